/* Process entry for TradeKernel programs (i386 System V ABI start-up).
 * The kernel leaves ESP at argc, then argv[0..argc-1], NULL, envp..., NULL, auxv.
 * _start passes (argc, argv, envp) to main and hands main's return value to exit(). */
    .section .text
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp              /* the outermost frame for debuggers */
    movl (%esp), %eax            /* argc */
    leal 4(%esp), %ebx           /* argv */
    leal 8(%esp,%eax,4), %ecx    /* envp: past argv's NULL */
    andl $-16, %esp              /* the ABI wants a 16-byte aligned stack at the call */
    subl $4, %esp
    pushl %ecx
    pushl %ebx
    pushl %eax
    call main
    pushl %eax
    call exit
    hlt                          /* not reached: exit does not return */
    .section .note.GNU-stack,"",@progbits
