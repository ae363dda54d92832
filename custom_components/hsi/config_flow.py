"""Config flow: server (user, Supervisor add-on, reauth, reconfigure), cameras, options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hsi_client import (
    CAMERA_CLASS_CHOICES,
    CAMERA_DEFAULT_CLASSES,
    RISK_LEVELS,
    Health,
    HsiAuthError,
    HsiClient,
    HsiConnectionError,
    HsiError,
    HsiInvalidResponseError,
    HsiNotSupportedError,
    HsiResponseError,
)
import voluptuous as vol
from yarl import URL

from homeassistant import data_entry_flow
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.hassio import HassioServiceInfo

from .const import (
    ALERT_DEFAULTS,
    CONF_ADDON,
    CONF_BATCH_WINDOW,
    CONF_BURST_FRAMES,
    CONF_CAMERA,
    CONF_CLASSES,
    CONF_CONDITION_ENTITY,
    CONF_CONDITION_STATES,
    CONF_CONFIDENCE,
    CONF_COOLDOWN,
    CONF_DASHBOARD_PATH,
    CONF_DESCRIBE,
    CONF_DESCRIPTION,
    CONF_ENRICH,
    CONF_FAST_PATH_THRESHOLD,
    CONF_HOME_MODE_ENTITY,
    CONF_IDLE_TIMEOUT,
    CONF_INTERVAL,
    CONF_LLM,
    CONF_MATCH_THRESHOLD,
    CONF_NOTIFY_MIN_LEVEL,
    CONF_NOTIFY_SERVICE,
    CONF_QUIET_END,
    CONF_QUIET_MODE,
    CONF_QUIET_START,
    CONF_RETENTION_DAYS,
    CONF_RETENTION_EVENTS,
    CONF_RETENTION_GB,
    CONF_THREAT_HOLD,
    CONF_THREAT_THRESHOLD,
    CONF_TRIGGER,
    CONF_VERIFY_SSL,
    CONF_ZONES,
    DEFAULT_BURST_FRAMES,
    DEFAULT_CONFIDENCE,
    DEFAULT_INTERVAL,
    DEFAULT_PORT,
    DEFAULT_URL,
    DOMAIN,
    HISTORY_DEFAULTS,
    LOGGER,
    OPTION_DEFAULTS,
    ROUTE_KEYS,
    SECTION_ALERTS,
    SECTION_HISTORY,
    SUBENTRY_CAMERA,
)
from .models import parse_targets
from .policy import QuietMode, Route


def normalise_url(url: str) -> str:
    """Canonical form of a server URL (also the unique id of the entry)."""
    parsed = URL(url.strip())
    if not parsed.scheme or not parsed.host:
        parsed = URL(f"http://{url.strip()}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(url)
    return str(parsed.with_path(parsed.path.rstrip("/")).with_query(None).with_fragment(None))


async def _validate(
    hass: HomeAssistant, url: str, api_key: str | None, verify_ssl: bool
) -> tuple[Health | None, dict[str, str]]:
    """Connect; return the health or the errors for the form."""
    client = HsiClient(url, async_get_clientsession(hass, verify_ssl=verify_ssl), api_key)
    try:
        return await client.validate(), {}
    except HsiAuthError:
        return None, {"base": "invalid_auth"}
    except HsiConnectionError:
        return None, {"base": "cannot_connect"}
    except (HsiInvalidResponseError, HsiNotSupportedError):
        return None, {"base": "not_hsi_server"}
    except HsiResponseError as err:
        if err.status in (502, 503, 504):  # up but not ready, or a proxy without upstream
            return None, {"base": "cannot_connect"}
        LOGGER.exception("Unexpected answer from %s", url)
        return None, {"base": "unknown"}
    except HsiError:  # pragma: no cover - every client error is one of the above
        LOGGER.exception("Unexpected answer from %s", url)
        return None, {"base": "unknown"}


def _server_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_URL, default=defaults.get(CONF_URL, DEFAULT_URL)): (
                selector.TextSelector(
                    selector.TextSelectorConfig(type=selector.TextSelectorType.URL)
                )
            ),
            vol.Optional(
                CONF_API_KEY, description={"suggested_value": defaults.get(CONF_API_KEY)}
            ): selector.TextSelector(
                selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
            ),
            vol.Required(
                CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)
            ): selector.BooleanSelector(),
        }
    )


class HsiConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one HSI server."""

    VERSION = 1

    _discovered: dict[str, Any]

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> HsiOptionsFlow:
        """Global behaviour."""
        return HsiOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Cameras are subentries."""
        return {SUBENTRY_CAMERA: CameraSubentryFlow}

    async def _async_server_step(
        self, step_id: str, user_input: dict[str, Any] | None, defaults: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, Health | None, ConfigFlowResult | None]:
        """Shared body of the user and reconfigure steps."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                url = normalise_url(user_input[CONF_URL])
            except ValueError:
                errors[CONF_URL] = "invalid_url"
            else:
                data = {
                    CONF_URL: url,
                    CONF_API_KEY: user_input.get(CONF_API_KEY) or None,
                    CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL],
                }
                health, errors = await _validate(
                    self.hass, url, data[CONF_API_KEY], data[CONF_VERIFY_SSL]
                )
                if not errors:
                    return data, health, None
        return (
            None,
            None,
            self.async_show_form(
                step_id=step_id,
                data_schema=_server_schema(user_input or defaults),
                errors=errors,
            ),
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the server URL and key, and test them."""
        data, _health, form = await self._async_server_step("user", user_input, {})
        if form is not None:
            return form
        assert data is not None
        await self.async_set_unique_id(data[CONF_URL])
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=_title(data[CONF_URL]), data=data)

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The add-on announced itself through Supervisor discovery."""
        config = discovery_info.config
        host = config.get("host", "127.0.0.1")
        port = config.get("port", DEFAULT_PORT)
        url = normalise_url(f"http://{host}:{port}")
        self._discovered = {
            CONF_URL: url,
            CONF_API_KEY: config.get("api_key") or None,
            CONF_VERIFY_SSL: True,
            CONF_ADDON: discovery_info.slug,
        }
        await self.async_set_unique_id(url)
        self._abort_if_unique_id_configured(updates=self._discovered)
        self.context["title_placeholders"] = {"name": discovery_info.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One confirmation, then the add-on is configured."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = self._discovered
            _health, errors = await _validate(
                self.hass, data[CONF_URL], data[CONF_API_KEY], data[CONF_VERIFY_SSL]
            )
            if not errors:
                return self.async_create_entry(title="HSI AI server (add-on)", data=data)
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders={"url": self._discovered[CONF_URL]},
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The server rejected the key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new API key."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = user_input.get(CONF_API_KEY) or None
            _health, errors = await _validate(
                self.hass, entry.data[CONF_URL], api_key, entry.data.get(CONF_VERIFY_SSL, True)
            )
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_API_KEY: api_key}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_API_KEY): selector.TextSelector(
                        selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
                    )
                }
            ),
            description_placeholders={"url": entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change URL, key or TLS verification."""
        entry = self._get_reconfigure_entry()
        data, _health, form = await self._async_server_step("reconfigure", user_input, entry.data)
        if form is not None:
            return form
        assert data is not None
        if data[CONF_URL] != entry.unique_id:
            await self.async_set_unique_id(data[CONF_URL])
            self._abort_if_unique_id_configured()
        return self.async_update_reload_and_abort(
            entry, unique_id=data[CONF_URL], title=_title(data[CONF_URL]), data=data
        )


def _title(url: str) -> str:
    parsed = URL(url)
    return f"HSI AI server ({parsed.host}:{parsed.port})"


def _seconds(low: int, high: int) -> selector.NumberSelector:
    """A duration field in whole seconds."""
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=low, max=high, step=1, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
        )
    )


def _slider(low: float, high: float, step: float) -> selector.NumberSelector:
    return selector.NumberSelector(selector.NumberSelectorConfig(min=low, max=high, step=step))


# Options with a default (const.OPTION_DEFAULTS) and how the form asks for them.
OPTION_FIELDS: dict[str, selector.Selector[Any]] = {
    CONF_BATCH_WINDOW: _seconds(5, 600),
    CONF_IDLE_TIMEOUT: _seconds(1, 300),
    CONF_FAST_PATH_THRESHOLD: _slider(0.5, 1.0, 0.01),
    CONF_COOLDOWN: _seconds(0, 3600),
    CONF_ENRICH: selector.BooleanSelector(),
    CONF_DESCRIBE: selector.BooleanSelector(),
    CONF_LLM: selector.BooleanSelector(),
    CONF_MATCH_THRESHOLD: _slider(0.5, 0.99, 0.01),
    CONF_THREAT_THRESHOLD: _slider(0, 100, 1),
    CONF_THREAT_HOLD: _seconds(0, 3600),
    CONF_NOTIFY_MIN_LEVEL: selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=list(RISK_LEVELS),
            mode=selector.SelectSelectorMode.DROPDOWN,
            translation_key=CONF_NOTIFY_MIN_LEVEL,
        )
    ),
}


class HsiOptionsFlow(OptionsFlow):
    """Global behaviour of the pipeline."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _alerts_check(user_input.get(SECTION_ALERTS) or {})
            if user_input[CONF_IDLE_TIMEOUT] > user_input[CONF_BATCH_WINDOW]:
                errors[CONF_IDLE_TIMEOUT] = "idle_longer_than_window"
            elif not errors:
                return self.async_create_entry(data=user_input)
        current = user_input or self.config_entry.options
        fields: dict[Any, Any] = {
            vol.Required(key, default=current.get(key, OPTION_DEFAULTS[key])): field
            for key, field in OPTION_FIELDS.items()
        }
        fields[
            vol.Optional(
                CONF_HOME_MODE_ENTITY,
                description={"suggested_value": current.get(CONF_HOME_MODE_ENTITY)},
            )
        ] = selector.EntitySelector(
            selector.EntitySelectorConfig(
                domain=["alarm_control_panel", "input_select", "select", "input_boolean", "sensor"]
            )
        )
        targets = list(parse_targets(current.get(CONF_NOTIFY_SERVICE)))
        fields[vol.Optional(CONF_NOTIFY_SERVICE, default=targets)] = selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=_notify_actions(self.hass, targets),
                multiple=True,
                custom_value=True,  # a phone that registers its notify action later
                mode=selector.SelectSelectorMode.DROPDOWN,
            )
        )
        fields[vol.Optional(SECTION_ALERTS)] = _alerts_section(current.get(SECTION_ALERTS) or {})
        # Defaults for a caller that leaves the section out (the frontend always sends it).
        fields[vol.Required(SECTION_HISTORY, default=dict)] = _history_section(
            current.get(SECTION_HISTORY) or {}
        )
        return self.async_show_form(step_id="init", data_schema=vol.Schema(fields), errors=errors)


# States offered for the alert condition (any other can be typed): presence and alarm panels.
CONDITION_STATE_SUGGESTIONS = (
    "not_home",
    "home",
    "armed_away",
    "armed_night",
    "armed_home",
    "armed_vacation",
    "on",
    "off",
)


def _notify_actions(hass: HomeAssistant, chosen: list[str]) -> list[str]:
    """Names of the notify actions there are (`notify.send_message` needs an entity: left out)."""
    names = set(hass.services.async_services_for_domain("notify")) - {"send_message"}
    return sorted(names | set(chosen))


def _alerts_check(alerts: Mapping[str, Any]) -> dict[str, str]:
    """Errors of the alerts section."""
    if bool(alerts.get(CONF_QUIET_START)) != bool(alerts.get(CONF_QUIET_END)):
        return {"base": "quiet_hours_incomplete"}
    if alerts.get(CONF_CONDITION_STATES) and not alerts.get(CONF_CONDITION_ENTITY):
        return {"base": "condition_without_entity"}
    return {}


def _alerts_section(current: Mapping[str, Any]) -> data_entry_flow.section:
    """Routing by level, the alert condition, quiet hours and the dashboard of the buttons."""
    values = ALERT_DEFAULTS | dict(current)
    routes = selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=[route.value for route in Route],
            mode=selector.SelectSelectorMode.DROPDOWN,
            translation_key="route",
        )
    )
    fields: dict[Any, Any] = {
        vol.Required(key, default=values[key]): routes for key in ROUTE_KEYS.values()
    }
    fields |= {
        vol.Optional(
            CONF_CONDITION_ENTITY, description={"suggested_value": values[CONF_CONDITION_ENTITY]}
        ): selector.EntitySelector(
            selector.EntitySelectorConfig(
                domain=[
                    "alarm_control_panel",
                    "person",
                    "group",
                    "zone",
                    "input_boolean",
                    "input_select",
                    "select",
                    "binary_sensor",
                    "sensor",
                ]
            )
        ),
        vol.Optional(
            CONF_CONDITION_STATES, default=list(values[CONF_CONDITION_STATES] or [])
        ): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=list(CONDITION_STATE_SUGGESTIONS), multiple=True, custom_value=True
            )
        ),
        vol.Optional(
            CONF_QUIET_START, description={"suggested_value": values[CONF_QUIET_START]}
        ): selector.TimeSelector(),
        vol.Optional(
            CONF_QUIET_END, description={"suggested_value": values[CONF_QUIET_END]}
        ): selector.TimeSelector(),
        vol.Required(CONF_QUIET_MODE, default=values[CONF_QUIET_MODE]): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[mode.value for mode in QuietMode],
                mode=selector.SelectSelectorMode.DROPDOWN,
                translation_key=CONF_QUIET_MODE,
            )
        ),
        vol.Required(
            CONF_DASHBOARD_PATH, default=values[CONF_DASHBOARD_PATH]
        ): selector.TextSelector(),
    }
    return data_entry_flow.section(vol.Schema(fields), {"collapsed": True})


def _history_section(current: Mapping[str, Any]) -> data_entry_flow.section:
    """Retention of the event store: days, events, image space (0: no limit)."""
    values = HISTORY_DEFAULTS | dict(current)

    def number(high: float, step: float, unit: str) -> selector.NumberSelector:
        return selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0,
                max=high,
                step=step,
                unit_of_measurement=unit,
                mode=selector.NumberSelectorMode.BOX,
            )
        )

    fields = {
        vol.Required(CONF_RETENTION_DAYS, default=values[CONF_RETENTION_DAYS]): number(
            3650, 1, "d"
        ),
        vol.Required(CONF_RETENTION_EVENTS, default=values[CONF_RETENTION_EVENTS]): number(
            1_000_000, 1, "events"
        ),
        vol.Required(CONF_RETENTION_GB, default=values[CONF_RETENTION_GB]): number(
            10_000, 0.1, "GB"
        ),
    }
    return data_entry_flow.section(vol.Schema(fields), {"collapsed": True})


def _camera_schema(
    defaults: Mapping[str, Any], *, include_camera: bool, watched: Sequence[str] = ()
) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if include_camera:
        # Cameras this entry watches already are left out of the picker (one subentry each).
        fields[vol.Required(CONF_CAMERA, default=defaults.get(CONF_CAMERA, vol.UNDEFINED))] = (
            selector.EntitySelector(
                selector.EntitySelectorConfig(domain="camera", exclude_entities=list(watched))
            )
        )
    fields.update(
        {
            vol.Optional(
                CONF_TRIGGER, description={"suggested_value": defaults.get(CONF_TRIGGER)}
            ): selector.EntitySelector(
                selector.EntitySelectorConfig(domain=["binary_sensor", "input_boolean"])
            ),
            vol.Required(
                CONF_INTERVAL, default=defaults.get(CONF_INTERVAL, DEFAULT_INTERVAL)
            ): _seconds(0, 3600),
            vol.Optional(
                CONF_DESCRIPTION, default=defaults.get(CONF_DESCRIPTION, "")
            ): selector.TextSelector(selector.TextSelectorConfig(multiline=True)),
            vol.Required(
                CONF_CLASSES, default=list(defaults.get(CONF_CLASSES, CAMERA_DEFAULT_CLASSES))
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=list(CAMERA_CLASS_CHOICES),
                    multiple=True,
                    custom_value=True,
                    translation_key=CONF_CLASSES,
                )
            ),
            vol.Required(
                CONF_CONFIDENCE, default=defaults.get(CONF_CONFIDENCE, DEFAULT_CONFIDENCE)
            ): _slider(0.05, 0.95, 0.05),
            vol.Required(
                CONF_BURST_FRAMES, default=defaults.get(CONF_BURST_FRAMES, DEFAULT_BURST_FRAMES)
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=1, max=10, step=1, mode=selector.NumberSelectorMode.BOX
                )
            ),
            vol.Optional(CONF_ZONES, default=defaults.get(CONF_ZONES, "")): (
                selector.TextSelector(selector.TextSelectorConfig(multiline=True))
            ),
        }
    )
    return vol.Schema(fields)


class CameraSubentryFlow(ConfigSubentryFlow):
    """Add or change one watched camera."""

    def _clean(self, user_input: dict[str, Any]) -> dict[str, Any]:
        data = dict(user_input)
        data[CONF_INTERVAL] = int(data.get(CONF_INTERVAL, DEFAULT_INTERVAL))
        data[CONF_BURST_FRAMES] = int(data.get(CONF_BURST_FRAMES, DEFAULT_BURST_FRAMES))
        data[CONF_CLASSES] = [c.strip().lower() for c in data.get(CONF_CLASSES, []) if c.strip()]
        return data

    def _check(self, data: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.hass.states.get(data[CONF_CAMERA]) is None:
            errors[CONF_CAMERA] = "camera_not_found"
        if not data[CONF_CLASSES]:
            errors[CONF_CLASSES] = "no_classes"
        if (trigger := data.get(CONF_TRIGGER)) and self.hass.states.get(trigger) is None:
            errors[CONF_TRIGGER] = "entity_not_found"
        if not trigger and not data[CONF_INTERVAL]:
            # Neither would ever start an analysis: the camera would be watched in name only.
            errors["base"] = "no_trigger"
        return errors

    def _watched(self) -> list[str]:
        """The cameras the entry watches already."""
        return [
            sub.data[CONF_CAMERA]
            for sub in self._get_entry().subentries.values()
            if sub.subentry_type == SUBENTRY_CAMERA
        ]

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Pick a camera and how to watch it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = self._clean(user_input)
            errors = self._check(data)
            if data[CONF_CAMERA] in self._watched():
                # A form error, not an abort: what the user typed stays in the form.
                errors[CONF_CAMERA] = "already_watched"
            if not errors:
                state = self.hass.states.get(data[CONF_CAMERA])
                title = state.name if state is not None else data[CONF_CAMERA]
                return self.async_create_entry(title=title, data=data, unique_id=data[CONF_CAMERA])
        return self.async_show_form(
            step_id="user",
            data_schema=_camera_schema(
                user_input or {}, include_camera=True, watched=self._watched()
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change how a camera is watched (the camera itself stays)."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = self._clean({**user_input, CONF_CAMERA: subentry.data[CONF_CAMERA]})
            errors = self._check(data)
            if not errors:
                return self.async_update_and_abort(self._get_entry(), subentry, data=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_camera_schema(user_input or subentry.data, include_camera=False),
            errors=errors,
            description_placeholders={"camera": subentry.title},
        )
