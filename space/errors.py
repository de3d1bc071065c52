"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""


class UsageError(Exception):
    """Bad input from the user (a spec, a file, a flag); the message says what is allowed."""


class GenomeError(UsageError):
    """A genome text, file or value that does not describe a valid MixNet."""
