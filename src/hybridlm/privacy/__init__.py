"""Personal data: find it (`PiiDetector`), replace it with placeholders for a remote model, put it back."""

from hybridlm.privacy.detector import Finding, PiiDetector
from hybridlm.privacy.placeholders import Redaction, StreamRestorer

__all__ = ["Finding", "PiiDetector", "Redaction", "StreamRestorer"]
