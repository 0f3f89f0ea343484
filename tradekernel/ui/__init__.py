"""The user interfaces: the pygame window and the headless terminal."""
