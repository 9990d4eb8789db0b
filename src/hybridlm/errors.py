"""The one base class of every error hybridlm reports to a person: catch it to print and exit."""


class HybridLMError(Exception):
    """An error whose message is meant for the user: it says what is wrong and where."""
