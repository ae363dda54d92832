"""Home Security Intelligence client: the contract shared by the AI server and the integration.

- `HsiClient` and its exceptions: the async HTTP client of the server (client.py)
- wire types of every endpoint the integration uses (models.py)
- the object taxonomy (taxonomy.py), risk levels and the assessment (risk.py), time of day
  (timeofday.py), key-frame choice (keyframes.py) and the ONE rules scorer (rules.py)
"""

from .client import (
    HsiAuthError,
    HsiClient,
    HsiConnectionError,
    HsiError,
    HsiInvalidResponseError,
    HsiNotSupportedError,
    HsiResponseError,
    image_content_type,
)
from .keyframes import key_frame, key_frames
from .models import (
    AnalysisResult,
    AnalyzedObject,
    AnalyzeOptions,
    BoundingBox,
    CameraInfo,
    Detection,
    DetectResult,
    DownloadProgress,
    EmbedResult,
    EventContext,
    EventMetadata,
    Health,
    KnownMatch,
    ModelStatus,
    RecentEvent,
    split_zones,
)
from .risk import (
    RISK_LEVELS,
    Flag,
    RiskAssessment,
    RiskFactor,
    RiskLevel,
    level_for,
    level_rank,
)
from .taxonomy import (
    CAMERA_CLASS_CHOICES,
    CAMERA_DEFAULT_CLASSES,
    DETECTOR_DEFAULT_CLASSES,
    GROUPS,
    ObjectGroup,
    group_of,
    is_wanted,
)
from .timeofday import TimeOfDay, time_of_day

__version__ = "0.1.0"

__all__ = [
    "CAMERA_CLASS_CHOICES",
    "CAMERA_DEFAULT_CLASSES",
    "DETECTOR_DEFAULT_CLASSES",
    "GROUPS",
    "RISK_LEVELS",
    "AnalysisResult",
    "AnalyzeOptions",
    "AnalyzedObject",
    "BoundingBox",
    "CameraInfo",
    "DetectResult",
    "Detection",
    "DownloadProgress",
    "EmbedResult",
    "EventContext",
    "EventMetadata",
    "Flag",
    "Health",
    "HsiAuthError",
    "HsiClient",
    "HsiConnectionError",
    "HsiError",
    "HsiInvalidResponseError",
    "HsiNotSupportedError",
    "HsiResponseError",
    "KnownMatch",
    "ModelStatus",
    "ObjectGroup",
    "RecentEvent",
    "RiskAssessment",
    "RiskFactor",
    "RiskLevel",
    "TimeOfDay",
    "group_of",
    "image_content_type",
    "is_wanted",
    "key_frame",
    "key_frames",
    "level_for",
    "level_rank",
    "split_zones",
    "time_of_day",
]
