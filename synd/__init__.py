"""synd, the SyNEThesia daemon: a generator network that turns sound into pictures."""

__version__ = "0.1.0"
