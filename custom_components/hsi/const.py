"""Constants for the Home Security Intelligence integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "hsi"
LOGGER = logging.getLogger(__package__)

DEFAULT_PORT: Final = 8090
DEFAULT_URL: Final = f"http://127.0.0.1:{DEFAULT_PORT}"
ADDON_SLUG: Final = "hsi_ai_server"

# Server status polling; more often while the server downloads or loads its models.
SCAN_INTERVAL: Final = timedelta(seconds=30)
LOADING_SCAN_INTERVAL: Final = timedelta(seconds=10)
# Raise a repair issue once the server has been unreachable this long.
REPAIR_GRACE_PERIOD: Final = timedelta(minutes=5)

# Entry data.
CONF_VERIFY_SSL: Final = "verify_ssl"
# The Supervisor add-on's slug, for entries the add-on's discovery made (the device's Visit link).
CONF_ADDON: Final = "addon"

# Subentry (camera) settings.
SUBENTRY_CAMERA: Final = "camera"
CONF_CAMERA: Final = "camera_entity"
CONF_TRIGGER: Final = "trigger_entity"
CONF_INTERVAL: Final = "interval"
CONF_DESCRIPTION: Final = "location_description"
CONF_CLASSES: Final = "classes"
CONF_CONFIDENCE: Final = "confidence"
CONF_ZONES: Final = "zones"
CONF_BURST_FRAMES: Final = "burst_frames"

# Options (global behaviour).
CONF_BATCH_WINDOW: Final = "batch_window"
CONF_IDLE_TIMEOUT: Final = "idle_timeout"
CONF_FAST_PATH_THRESHOLD: Final = "fast_path_threshold"
CONF_COOLDOWN: Final = "cooldown"
CONF_ENRICH: Final = "enrich"
CONF_DESCRIBE: Final = "describe"
CONF_LLM: Final = "llm"
CONF_HOME_MODE_ENTITY: Final = "home_mode_entity"
CONF_MATCH_THRESHOLD: Final = "match_threshold"
CONF_THREAT_THRESHOLD: Final = "threat_threshold"
CONF_THREAT_HOLD: Final = "threat_hold"
CONF_NOTIFY_SERVICE: Final = "notify_service"
CONF_NOTIFY_MIN_LEVEL: Final = "notify_min_level"

DEFAULT_INTERVAL: Final = 0  # seconds; 0 = no interval trigger
DEFAULT_CONFIDENCE: Final = 0.5
DEFAULT_BURST_FRAMES: Final = 3
DEFAULT_BURST_SPACING: Final = 0.5  # seconds between snapshots of one burst
# While the trigger entity stays on, one more snapshot this often (seconds): who arrives or
# leaves while motion goes on is seen too.
MOTION_REPEAT: Final = timedelta(seconds=10)
DEFAULT_BATCH_WINDOW: Final = 90
DEFAULT_IDLE_TIMEOUT: Final = 30
DEFAULT_FAST_PATH_THRESHOLD: Final = 0.9
DEFAULT_COOLDOWN: Final = 300
DEFAULT_MATCH_THRESHOLD: Final = 0.85
DEFAULT_THREAT_THRESHOLD: Final = 60
DEFAULT_THREAT_HOLD: Final = 120
# Alerts from this level up: low-risk events (a known face, a passing car) are recorded only.
DEFAULT_NOTIFY_MIN_LEVEL: Final = "medium"

# Every option with its default: read by the options flow and by PipelineOptions alike.
OPTION_DEFAULTS: Final[dict[str, float | bool | str | None]] = {
    CONF_BATCH_WINDOW: DEFAULT_BATCH_WINDOW,
    CONF_IDLE_TIMEOUT: DEFAULT_IDLE_TIMEOUT,
    CONF_FAST_PATH_THRESHOLD: DEFAULT_FAST_PATH_THRESHOLD,
    CONF_COOLDOWN: DEFAULT_COOLDOWN,
    CONF_ENRICH: True,
    CONF_DESCRIBE: True,
    CONF_LLM: True,
    CONF_MATCH_THRESHOLD: DEFAULT_MATCH_THRESHOLD,
    CONF_THREAT_THRESHOLD: DEFAULT_THREAT_THRESHOLD,
    CONF_THREAT_HOLD: DEFAULT_THREAT_HOLD,
    CONF_NOTIFY_MIN_LEVEL: DEFAULT_NOTIFY_MIN_LEVEL,
    CONF_HOME_MODE_ENTITY: None,
    CONF_NOTIFY_SERVICE: None,
}

# Alerts: the options flow's "alerts" section, stored as options["alerts"] (a section, not a
# flat option: scenes and OPTION_DEFAULTS do not know these keys).
SECTION_ALERTS: Final = "alerts"
CONF_ROUTE_LOW: Final = "route_low"
CONF_ROUTE_MEDIUM: Final = "route_medium"
CONF_ROUTE_HIGH: Final = "route_high"
CONF_ROUTE_CRITICAL: Final = "route_critical"
CONF_CONDITION_ENTITY: Final = "condition_entity"
CONF_CONDITION_STATES: Final = "condition_states"
CONF_QUIET_START: Final = "quiet_start"
CONF_QUIET_END: Final = "quiet_end"
CONF_QUIET_MODE: Final = "quiet_mode"
CONF_DASHBOARD_PATH: Final = "dashboard_path"
# Level -> option key of its route.
ROUTE_KEYS: Final[dict[str, str]] = {
    "low": CONF_ROUTE_LOW,
    "medium": CONF_ROUTE_MEDIUM,
    "high": CONF_ROUTE_HIGH,
    "critical": CONF_ROUTE_CRITICAL,
}
ALERT_DEFAULTS: Final[dict[str, str | list[str] | None]] = {
    CONF_ROUTE_LOW: "timeline",
    CONF_ROUTE_MEDIUM: "active",
    CONF_ROUTE_HIGH: "time_sensitive",
    CONF_ROUTE_CRITICAL: "critical",
    CONF_CONDITION_ENTITY: None,
    CONF_CONDITION_STATES: [],
    CONF_QUIET_START: None,
    CONF_QUIET_END: None,
    CONF_QUIET_MODE: "silent",
    CONF_DASHBOARD_PATH: "/lovelace/0",
}
# Action ids of the notification buttons (mobile_app_notification_action): "<id>|<target>".
ACTION_SNOOZE_1H: Final = "HSI_SNOOZE_1H"
ACTION_FALSE_ALARM: Final = "HSI_FALSE_ALARM"
ACTION_KNOWN: Final = "HSI_KNOWN"
SNOOZE_BUTTON: Final = timedelta(hours=1)
# Lifetime of signed image links that leave the app (other notify platforms, persistent
# notifications): long enough to read the alert later the same day, short enough to expire.
ALERT_LINK_TTL: Final = timedelta(hours=12)
MAX_SENT_REMEMBERED: Final = 200  # notifications out that updates can replace

# Bus events.
EVENT_DETECTION: Final = "hsi_detection"
EVENT_SECURITY: Final = "hsi_security_event"
# Dispatcher signal of one camera's security events (for its event entity).
SIGNAL_EVENT: Final = f"{DOMAIN}_camera_event_{{}}"
# Dispatcher signal of one camera's snooze end (for its "Snoozed until" entity).
SIGNAL_SNOOZE: Final = f"{DOMAIN}_camera_snooze_{{}}"

# Limits of the pipeline.
MAX_KEY_FRAMES: Final = 4
MAX_ALERTS_REMEMBERED: Final = 100  # recent alerts the cooldown looks at, across cameras
MAX_BATCH_FRAMES: Final = 32
# Server calls in flight across all cameras, in two budgets: an /analyze holds its call for
# seconds (the LLM), so a shared budget made frames wait behind analyses (docs/reliability.md).
MAX_CONCURRENT_DETECTS: Final = 3  # /detect: frames
MAX_CONCURRENT_ANALYSES: Final = 2  # /analyze: closed batches
DETECT_ATTEMPTS: Final = 3  # a busy server (503 queue full) gets two more tries per frame
MAX_RETRY_AFTER: Final = 5.0  # seconds: the longest Retry-After a frame waits for
ANALYZE_ATTEMPTS: Final = 3
ANALYZE_RETRY_DELAY: Final = 2.0  # seconds, doubled per attempt
# Event history: the options flow's "history" section, stored as options["history"].
SECTION_HISTORY: Final = "history"
CONF_RETENTION_DAYS: Final = "retention_days"
CONF_RETENTION_EVENTS: Final = "retention_events"
CONF_RETENTION_GB: Final = "retention_gb"
# A month of events, 10 000 of them and 2 GB of images at most (0 switches a limit off).
HISTORY_DEFAULTS: Final[dict[str, float]] = {
    CONF_RETENTION_DAYS: 30,
    CONF_RETENTION_EVENTS: 10_000,
    CONF_RETENTION_GB: 2.0,
}
RECENT_TTL: Final = timedelta(hours=24)

ATTR_EVENT_ID: Final = "event_id"
