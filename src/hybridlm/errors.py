"""The one base class of every error hybridlm reports to a person: catch it to print and exit."""


class HybridLMError(Exception):
    """An error whose message is meant for the user: it says what is wrong and where."""


class MissingExtra(HybridLMError):
    """A feature used on an install without the optional libraries it needs: names the extra to add."""

    def __init__(self, distribution: str, extra: str) -> None:
        super().__init__(f"{distribution} is not installed: this needs hybridlm[{extra}]: "
                         f"pip install 'hybridlm[{extra}]'")
        self.distribution = distribution
        self.extra = extra
