/*
 * Home Security Intelligence: the security timeline card (custom:hsi-timeline-card).
 *
 * Shipped inside the integration and loaded by it (frontend.py): no build step, no CDN, no
 * dependency; plain custom elements. It talks to Home Assistant only through the integration's
 * websocket API (hsi/events/list|get|subscribe|feedback, hsi/cameras); image URLs arrive signed
 * for this connection, so the card never builds an image URL itself.
 *
 *   type: custom:hsi-timeline-card
 *   title: Security timeline        # optional
 *   cameras: [<camera_id>, ...]     # optional: only these cameras (hsi/cameras ids)
 *   min_level: medium               # optional: low | medium | high | critical
 *   show_filters: true              # camera and level pickers above the list
 *   page_size: 25                   # events per page (infinite scroll loads the next)
 *
 * A URL parameter hsi_event=<event_id> opens that event (notification buttons link here).
 */

const CARD_TYPE = "hsi-timeline-card";
const EDITOR_TYPE = "hsi-timeline-card-editor";
// The integration loads this file as a module with its own version as the query (frontend.py).
const VERSION = new URL(import.meta.url).searchParams.get("v") ?? "dev";
const LEVELS = ["low", "medium", "high", "critical"];
const DEFAULT_PAGE_SIZE = 25;
// A signed image URL lives one hour; refetch an event whose image stops loading, once a minute.
const REFRESH_AFTER_MS = 60_000;

const TEXT = {
  title: "Security timeline",
  allCameras: "All cameras",
  anyLevel: "Any level",
  levelAtLeast: (level) => `${LEVEL_NAMES[level]} and above`,
  empty: "No security events yet.",
  emptyFiltered: "No security events match these filters.",
  loadMore: "Load more",
  loading: "Loading…",
  back: "Back",
  live: "Live",
  offline: "Reconnecting…",
  reasoning: "Reasoning",
  factors: "Risk factors",
  objects: "Objects",
  matches: "Known matches",
  frames: "Key frames",
  action: "Recommended action",
  description: "Description",
  flags: "Flags",
  acknowledge: "Acknowledge",
  unacknowledge: "Mark unread",
  falseAlarm: "False alarm",
  keep: "Keep",
  unkeep: "Don't keep",
  thisIs: "This is…",
  thisIsPrompt: "Who is this? (an enrolled name)",
  acknowledged: "Acknowledged",
  markedFalseAlarm: "Marked as false alarm",
  kept: "Kept (retention skips it)",
  identified: (name) => `Identified as ${name}`,
  notFound: "This event no longer exists.",
  noImage: "No snapshot",
  preliminary: "Preliminary",
  sourceRules: "Rule-based assessment",
  sourceLlm: "Assessed by the local LLM",
  occurrences: (n) => `${n} sightings`,
  score: "Risk score",
};
const LEVEL_NAMES = { low: "Low", medium: "Medium", high: "High", critical: "Critical" };

function esc(value) {
  return String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

function levelOf(event) {
  return LEVELS.includes(event.risk_level) ? event.risk_level : "low";
}

function sortKey(event) {
  return `${event.started_at}\u0000${event.event_id}`;
}

function newestFirst(a, b) {
  const ka = sortKey(a);
  const kb = sortKey(b);
  return ka < kb ? 1 : ka > kb ? -1 : 0;
}

/** The filters of the websocket API, from the card's configuration and its pickers. */
function filterMessage(config, state) {
  const message = {};
  const cameras = state.camera ? [state.camera] : config.cameras;
  if (cameras && cameras.length) message.cameras = cameras;
  const level = state.minLevel ?? config.min_level;
  if (level) message.min_level = level;
  return message;
}

function matchesFilter(event, filter) {
  if (filter.cameras && !filter.cameras.includes(event.camera_id)) return false;
  if (filter.min_level && LEVELS.indexOf(levelOf(event)) < LEVELS.indexOf(filter.min_level)) {
    return false;
  }
  return true;
}

const STYLES = `
  :host { display: block; height: 100%; }
  ha-card { display: flex; flex-direction: column; height: 100%; overflow: hidden; }
  .header { display: flex; align-items: center; gap: 8px; padding: 12px 16px 4px; flex-wrap: wrap; }
  .title { font-size: var(--ha-card-header-font-size, 20px); color: var(--ha-card-header-color, var(--primary-text-color)); flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .live { font-size: 12px; color: var(--secondary-text-color); display: inline-flex; align-items: center; gap: 4px; }
  .live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--success-color, #43a047); }
  .live.off::before { background: var(--warning-color, #ffa600); }
  .filters { display: flex; gap: 8px; padding: 4px 16px 8px; flex-wrap: wrap; }
  select { font: inherit; font-size: 14px; color: var(--primary-text-color); background: var(--input-fill-color, var(--secondary-background-color, transparent)); border: 1px solid var(--divider-color); border-radius: 8px; padding: 6px 8px; min-width: 0; flex: 1 1 140px; max-width: 100%; }
  .list { overflow-y: auto; max-height: var(--hsi-timeline-max-height, 560px); flex: 1 1 auto; min-height: 0; padding: 0 8px 8px; }
  .row { display: flex; gap: 12px; align-items: center; padding: 8px; border-radius: 12px; cursor: pointer; border: none; background: none; width: 100%; text-align: start; color: inherit; font: inherit; }
  .row:hover, .row:focus-visible { background: var(--secondary-background-color, rgba(127,127,127,.1)); outline: none; }
  .row.unread .summary { font-weight: 500; }
  .thumb { width: 96px; height: 60px; flex: 0 0 auto; border-radius: 8px; object-fit: cover; background: var(--secondary-background-color, #8882); display: flex; align-items: center; justify-content: center; color: var(--secondary-text-color); font-size: 11px; }
  .body { min-width: 0; flex: 1 1 auto; display: flex; flex-direction: column; gap: 2px; }
  .meta { display: flex; gap: 8px; align-items: center; font-size: 12px; color: var(--secondary-text-color); min-width: 0; }
  .meta .camera { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
  .meta .time { white-space: nowrap; flex: 0 0 auto; }
  .summary { font-size: 14px; color: var(--primary-text-color); overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
  .badge { display: inline-block; flex: 0 0 auto; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 500; color: var(--hsi-badge-text-color, #fff); background: var(--hsi-level-color); }
  .level-low { --hsi-level-color: var(--hsi-level-low-color, var(--success-color, #43a047)); }
  .level-medium { --hsi-level-color: var(--hsi-level-medium-color, var(--warning-color, #ffa600)); --hsi-badge-text-color: #000; }
  .level-high { --hsi-level-color: var(--hsi-level-high-color, #e65100); }
  .level-critical { --hsi-level-color: var(--hsi-level-critical-color, var(--error-color, #db4437)); }
  .marks { font-size: 11px; color: var(--secondary-text-color); }
  .more { display: flex; justify-content: center; padding: 8px; }
  button.action { font: inherit; font-size: 14px; border-radius: 18px; border: 1px solid var(--divider-color); background: none; color: var(--primary-color); padding: 6px 14px; cursor: pointer; }
  button.action:hover { background: var(--secondary-background-color, rgba(127,127,127,.1)); }
  button.action.on { background: var(--primary-color); color: var(--text-primary-color, #fff); border-color: var(--primary-color); }
  button.action:disabled { opacity: .5; cursor: default; }
  .empty, .error, .loading { padding: 24px 16px; text-align: center; color: var(--secondary-text-color); }
  .error { color: var(--error-color, #db4437); }
  .detail { overflow-y: auto; max-height: var(--hsi-detail-max-height, 80vh); padding: 0 16px 16px; }
  .detail-head { display: flex; align-items: center; gap: 8px; padding: 8px 8px 0; }
  .detail-head .camera { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--secondary-text-color); font-size: 14px; }
  .snapshot { width: 100%; border-radius: 12px; display: block; margin: 8px 0; background: var(--secondary-background-color, #8882); }
  .frames { display: flex; gap: 8px; overflow-x: auto; }
  .frames img { height: 72px; border-radius: 8px; cursor: pointer; }
  h3 { font-size: 14px; font-weight: 500; margin: 16px 0 4px; color: var(--primary-text-color); }
  p, li { font-size: 14px; color: var(--primary-text-color); margin: 4px 0; overflow-wrap: anywhere; }
  ul { padding-inline-start: 20px; margin: 4px 0; }
  .sub { color: var(--secondary-text-color); font-size: 12px; }
  .buttons { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 16px; }
  .identity { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
  .identity input { font: inherit; font-size: 14px; padding: 6px 8px; border-radius: 8px; border: 1px solid var(--divider-color); background: var(--input-fill-color, transparent); color: var(--primary-text-color); min-width: 0; flex: 1 1 120px; }
  .icon-button { border: none; background: none; color: var(--primary-text-color); cursor: pointer; font: inherit; padding: 6px 8px; border-radius: 8px; display: inline-flex; align-items: center; gap: 4px; }
  .icon-button:hover { background: var(--secondary-background-color, rgba(127,127,127,.1)); }
  .sentinel { height: 1px; }
  @media (max-width: 420px) { .thumb { width: 72px; height: 48px; } .header { padding: 10px 12px 2px; } .filters { padding: 4px 12px 8px; } .detail { padding: 0 12px 12px; } }
`;

class HsiTimelineCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._config = null;
    this._hass = null;
    this._state = { camera: null, minLevel: null };
    this._events = [];
    this._cursor = null;
    this._loaded = false; // first page arrived
    this._loading = false;
    this._error = null;
    this._cameras = [];
    this._selected = null; // the event shown in detail
    this._subscription = null;
    this._generation = 0; // a filter change makes answers of older requests void
    this._refreshed = new Map();
    this._onLocation = () => this._openDeepLink();
    this._onReady = () => this._reconnected();
    this._onDisconnected = () => this._setLive(false);
  }

  // --- Lovelace API ---------------------------------------------------------------------------

  setConfig(config) {
    if (!config || typeof config !== "object") throw new Error("Invalid configuration");
    if (config.min_level && !LEVELS.includes(config.min_level)) {
      throw new Error(`min_level must be one of ${LEVELS.join(", ")}`);
    }
    if (config.cameras !== undefined && !Array.isArray(config.cameras)) {
      throw new Error("cameras must be a list of camera ids");
    }
    const previous = this._config;
    this._config = { show_filters: true, page_size: DEFAULT_PAGE_SIZE, ...config };
    // Started (on a page, with hass) and changed: the editor's preview follows every edit.
    if (previous && this._connection && JSON.stringify(previous) !== JSON.stringify(this._config)) {
      this._state = { camera: null, minLevel: null };
      this._restart();
    }
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    const connectionChanged = this._hass && this._hass.connection !== hass.connection;
    this._hass = hass;
    if (first || connectionChanged) this._start();
  }

  get hass() {
    return this._hass;
  }

  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  static getStubConfig() {
    return { title: TEXT.title };
  }

  getCardSize() {
    return 6;
  }

  getGridOptions() {
    return { columns: 12, rows: 6, min_columns: 6, min_rows: 4 };
  }

  connectedCallback() {
    window.addEventListener("location-changed", this._onLocation);
    window.addEventListener("popstate", this._onLocation);
    if (this._hass && !this._subscription) this._start();
  }

  disconnectedCallback() {
    window.removeEventListener("location-changed", this._onLocation);
    window.removeEventListener("popstate", this._onLocation);
    this._stop();
  }

  // --- Data -----------------------------------------------------------------------------------

  get _filter() {
    return filterMessage(this._config ?? {}, this._state);
  }

  _start() {
    if (!this._config || !this._hass || !this.isConnected) return;
    this._stop();
    const connection = this._hass.connection;
    connection.addEventListener("ready", this._onReady);
    connection.addEventListener("disconnected", this._onDisconnected);
    this._connection = connection;
    this._loadCameras();
    this._restart();
    this._openDeepLink();
  }

  _stop() {
    this._unsubscribe();
    if (this._connection) {
      this._connection.removeEventListener("ready", this._onReady);
      this._connection.removeEventListener("disconnected", this._onDisconnected);
      this._connection = null;
    }
    this._observer?.disconnect();
    this._observer = null;
  }

  _unsubscribe() {
    const subscription = this._subscription;
    this._subscription = null;
    if (subscription) {
      subscription.then((unsub) => unsub()).catch(() => {});
    }
  }

  /** First page again and a new subscription, for the current filters. */
  _restart() {
    if (!this._hass) return;
    this._generation += 1;
    this._events = [];
    this._cursor = null;
    this._loaded = false;
    this._loading = false; // a page still in flight belongs to the old filters: not waited for
    this._error = null;
    this._unsubscribe();
    const generation = this._generation;
    const filter = this._filter;
    // subscribeMessage resubscribes by itself after a reconnect (home-assistant-js-websocket).
    this._subscription = this._hass.connection.subscribeMessage(
      (message) => {
        if (generation === this._generation) this._live(message, filter);
      },
      { type: "hsi/events/subscribe", ...filter },
    );
    this._subscription.catch((err) => {
      if (generation === this._generation) this._fail(err);
    });
    this._setLive(true);
    this._loadPage();
  }

  async _loadCameras() {
    try {
      const result = await this._hass.callWS({ type: "hsi/cameras" });
      this._cameras = result.cameras ?? [];
      // Enrolled names for "this is …", when the API lists them (names or {name} objects);
      // otherwise the names of enrolled matches of the event itself are offered.
      const enrolled = result.enrolled ?? [];
      this._enrolled = enrolled.map((e) => (typeof e === "string" ? e : e?.name)).filter(Boolean);
      this._render();
    } catch (err) {
      this._fail(err);
    }
  }

  async _loadPage() {
    if (this._loading || (this._loaded && !this._cursor)) return;
    this._loading = true;
    const generation = this._generation;
    const message = {
      type: "hsi/events/list",
      ...this._filter,
      limit: Number(this._config.page_size) || DEFAULT_PAGE_SIZE,
    };
    if (this._cursor) message.cursor = this._cursor;
    this._renderMore();
    try {
      const result = await this._hass.callWS(message);
      if (generation !== this._generation) return;
      const known = new Set(this._events.map((e) => e.event_id));
      // An event the subscription delivered already is not listed twice.
      for (const event of result.events) if (!known.has(event.event_id)) this._events.push(event);
      this._events.sort(newestFirst);
      this._cursor = result.next_cursor ?? null;
      this._loaded = true;
      this._error = null;
    } catch (err) {
      if (generation === this._generation) this._error = err;
    } finally {
      if (generation === this._generation) {
        this._loading = false;
        this._render();
      }
    }
  }

  _live(message, filter) {
    const { kind, event } = message;
    if (!event) return;
    const index = this._events.findIndex((e) => e.event_id === event.event_id);
    if (kind === "removed" || !matchesFilter(event, filter)) {
      if (index >= 0) this._events.splice(index, 1);
    } else if (index >= 0) {
      this._events[index] = event;
    } else if (
      !this._cursor ||
      !this._events.length ||
      newestFirst(event, this._events[this._events.length - 1]) <= 0
    ) {
      // Beyond the loaded pages it arrives when they are reached, not now.
      this._events.push(event);
      this._events.sort(newestFirst);
    }
    if (this._selected?.event_id === event.event_id) {
      this._selected = kind === "removed" ? { ...this._selected, removed: true } : event;
    }
    this._loaded = true;
    this._render();
  }

  _reconnected() {
    // Events that happened while the connection was down: the first page again.
    this._setLive(true);
    this._restartKeepingDetail();
  }

  _restartKeepingDetail() {
    const selected = this._selected;
    this._restart();
    this._selected = selected;
    if (selected) this._refreshEvent(selected.event_id);
  }

  _setLive(on) {
    this._liveOn = on;
    const live = this.shadowRoot.querySelector(".live");
    if (live) {
      live.classList.toggle("off", !on);
      live.textContent = on ? TEXT.live : TEXT.offline;
    }
  }

  _fail(err) {
    this._error = err;
    this._render();
  }

  async _refreshEvent(eventId) {
    try {
      const { event } = await this._hass.callWS({ type: "hsi/events/get", event_id: eventId });
      this._replace(event);
      return event;
    } catch (err) {
      if (err?.code === "not_found" && this._selected?.event_id === eventId) {
        this._selected = { ...this._selected, removed: true };
        this._render();
      }
      return null;
    }
  }

  _replace(event) {
    const index = this._events.findIndex((e) => e.event_id === event.event_id);
    if (index >= 0) this._events[index] = event;
    if (this._selected?.event_id === event.event_id) this._selected = event;
    this._render();
  }

  /** An image failed (a signature expired after an hour): fetch the event with fresh ones. */
  _imageFailed(eventId) {
    const last = this._refreshed.get(eventId) ?? 0;
    if (Date.now() - last < REFRESH_AFTER_MS) return;
    this._refreshed.set(eventId, Date.now());
    this._refreshEvent(eventId);
  }

  async _openDeepLink() {
    if (!this._hass) return;
    const eventId = new URLSearchParams(window.location.search).get("hsi_event");
    if (!eventId || eventId === this._deepLinked) return;
    this._deepLinked = eventId;
    const found = this._events.find((e) => e.event_id === eventId);
    if (found) return this._open(found);
    try {
      const { event } = await this._hass.callWS({ type: "hsi/events/get", event_id: eventId });
      this._open(event);
    } catch (err) {
      this._error = err?.code === "not_found" ? new Error(TEXT.notFound) : err;
      this._render();
    }
  }

  _open(event) {
    // Back from the detail returns to the same place in a long list.
    this._listScroll = this.shadowRoot.querySelector(".list")?.scrollTop ?? this._listScroll;
    this._selected = event;
    this._render();
    this.shadowRoot.querySelector(".detail")?.scrollTo?.(0, 0);
  }

  _close() {
    this._selected = null;
    // Leave the deep link so that reloading the page shows the timeline again.
    const url = new URL(window.location.href);
    if (url.searchParams.has("hsi_event")) {
      url.searchParams.delete("hsi_event");
      window.history.replaceState(window.history.state, "", url);
    }
    this._render();
  }

  async _feedback(action, name) {
    const event = this._selected;
    if (!event) return;
    const message = { type: "hsi/events/feedback", event_id: event.event_id, action };
    if (name) message.name = name;
    this._busy = true;
    this._render();
    try {
      const result = await this._hass.callWS(message);
      this._replace(result.event);
      this._toast(this._feedbackText(action, name));
    } catch (err) {
      this._toast(err?.message ?? String(err));
    } finally {
      this._busy = false;
      this._render();
    }
  }

  _feedbackText(action, name) {
    return {
      acknowledge: TEXT.acknowledged,
      unacknowledge: TEXT.unacknowledge,
      false_alarm: TEXT.markedFalseAlarm,
      keep: TEXT.kept,
      unkeep: TEXT.unkeep,
      identity: TEXT.identified(name),
    }[action];
  }

  _toast(message) {
    this.dispatchEvent(
      new CustomEvent("hass-notification", { detail: { message }, bubbles: true, composed: true }),
    );
  }

  // --- Rendering ------------------------------------------------------------------------------

  _formatTime(iso, withDate = false) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return esc(iso);
    const language = this._hass?.locale?.language ?? this._hass?.language ?? navigator.language;
    const today = new Date().toDateString() === date.toDateString();
    const options = { hour: "2-digit", minute: "2-digit" };
    if (withDate || !today) Object.assign(options, { day: "numeric", month: "short" });
    if (withDate) options.second = "2-digit";
    try {
      return new Intl.DateTimeFormat(language, options).format(date);
    } catch {
      return date.toLocaleString();
    }
  }

  _cameraName(cameraId, fallback) {
    return this._cameras.find((c) => c.camera_id === cameraId)?.name ?? fallback ?? cameraId;
  }

  _badge(event) {
    const level = levelOf(event);
    return `<span class="badge level-${level}" title="${esc(TEXT.score)} ${esc(event.risk_score)}/100">${esc(LEVEL_NAMES[level])} · ${esc(event.risk_score)}</span>`;
  }

  _marks(event) {
    const marks = [];
    if (event.preliminary) marks.push(TEXT.preliminary);
    if (event.false_alarm) marks.push(TEXT.falseAlarm);
    if (event.keep) marks.push(TEXT.keep);
    if (event.identity) marks.push(event.identity);
    return marks.length ? `<span class="marks">${marks.map(esc).join(" · ")}</span>` : "";
  }

  _render() {
    if (!this._config) return;
    const root = this.shadowRoot;
    if (!root.querySelector("ha-card")) {
      root.innerHTML = `<style>${STYLES}</style><ha-card></ha-card>`;
      root.addEventListener("click", (ev) => this._onClick(ev));
      root.addEventListener("change", (ev) => this._onChange(ev));
      root.addEventListener("submit", (ev) => ev.preventDefault());
      root.addEventListener("error", (ev) => this._onImageError(ev), true);
    }
    const card = root.querySelector("ha-card");
    if (this._selected) {
      // Unchanged detail (a live event of another camera): keep it, and what is typed in it.
      const key = [this._selected, this._busy];
      if (this._detailKey?.[0] === key[0] && this._detailKey?.[1] === key[1]) return;
      this._detailKey = key;
      const scroll = root.querySelector(".detail")?.scrollTop ?? 0;
      card.innerHTML = this._renderDetail(this._selected);
      const detail = root.querySelector(".detail");
      if (detail && this._selected.event_id === this._detailShown) detail.scrollTop = scroll;
      this._detailShown = this._selected.event_id;
      this._observer?.disconnect();
      return;
    }
    this._detailShown = null;
    this._detailKey = null;
    const scroll = root.querySelector(".list")?.scrollTop ?? this._listScroll ?? 0;
    this._listScroll = 0;
    card.innerHTML = this._renderList();
    const list = root.querySelector(".list");
    if (list) list.scrollTop = scroll;
    this._observeSentinel();
  }

  _renderHeader() {
    const title = this._config.title ?? TEXT.title;
    const live = `<span class="live${this._liveOn === false ? " off" : ""}">${this._liveOn === false ? TEXT.offline : TEXT.live}</span>`;
    let filters = "";
    if (this._config.show_filters !== false) {
      const allowed = this._config.cameras?.length
        ? this._cameras.filter((c) => this._config.cameras.includes(c.camera_id))
        : this._cameras;
      const cameraOptions = allowed
        .map(
          (c) =>
            `<option value="${esc(c.camera_id)}"${this._state.camera === c.camera_id ? " selected" : ""}>${esc(c.name)}</option>`,
        )
        .join("");
      const floor = LEVELS.indexOf(this._config.min_level ?? "low");
      const current = this._state.minLevel ?? this._config.min_level ?? "";
      const levelOptions = LEVELS.filter((l, i) => i > floor)
        .map(
          (l) =>
            `<option value="${l}"${current === l ? " selected" : ""}>${esc(TEXT.levelAtLeast(l))}</option>`,
        )
        .join("");
      const anyLabel = floor > 0 ? TEXT.levelAtLeast(LEVELS[floor]) : TEXT.anyLevel;
      filters = `<div class="filters">
        <select class="camera-filter" aria-label="Camera">${allowed.length > 1 || !this._config.cameras?.length ? `<option value="">${esc(TEXT.allCameras)}</option>` : ""}${cameraOptions}</select>
        <select class="level-filter" aria-label="Minimum level"><option value="">${esc(anyLabel)}</option>${levelOptions}</select>
      </div>`;
    }
    return `<div class="header"><div class="title">${esc(title)}</div>${live}</div>${filters}`;
  }

  _renderRow(event) {
    const snapshot = event.image_urls?.snapshot;
    const thumb = snapshot
      ? `<img class="thumb" loading="lazy" alt="" src="${esc(snapshot)}" data-event="${esc(event.event_id)}">`
      : `<div class="thumb">${esc(TEXT.noImage)}</div>`;
    const unread = event.acknowledged ? "" : " unread";
    return `<button class="row${unread}" data-open="${esc(event.event_id)}">
      ${thumb}
      <div class="body">
        <div class="meta">${this._badge(event)}<span class="camera">${esc(this._cameraName(event.camera_id, event.camera))}</span><span class="time">${this._formatTime(event.started_at)}</span></div>
        <div class="summary">${esc(event.summary)}</div>
        ${this._marks(event)}
      </div>
    </button>`;
  }

  _renderList() {
    let body;
    if (this._error && !this._events.length) {
      body = `<div class="error">${esc(this._error.message ?? this._error)}</div>`;
    } else if (!this._loaded) {
      body = `<div class="loading">${esc(TEXT.loading)}</div>`;
    } else if (!this._events.length) {
      const filtered = this._state.camera || this._state.minLevel;
      body = `<div class="empty">${esc(filtered ? TEXT.emptyFiltered : TEXT.empty)}</div>`;
    } else {
      body = this._events.map((e) => this._renderRow(e)).join("");
    }
    return `${this._renderHeader()}<div class="list" role="list">${body}<div class="sentinel"></div><div class="more">${this._moreButton()}</div></div>`;
  }

  _moreButton() {
    if (!this._cursor) return "";
    return `<button class="action load-more"${this._loading ? " disabled" : ""}>${esc(this._loading ? TEXT.loading : TEXT.loadMore)}</button>`;
  }

  _renderMore() {
    const more = this.shadowRoot.querySelector(".more");
    if (more) more.innerHTML = this._moreButton();
  }

  _observeSentinel() {
    this._observer?.disconnect();
    const list = this.shadowRoot.querySelector(".list");
    const sentinel = this.shadowRoot.querySelector(".sentinel");
    if (!list || !sentinel || !this._cursor || !("IntersectionObserver" in window)) return;
    this._observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) this._loadPage();
      },
      { root: list, rootMargin: "200px" },
    );
    this._observer.observe(sentinel);
  }

  _renderDetail(event) {
    if (event.removed) {
      return `<div class="detail-head"><button class="icon-button back">‹ ${esc(TEXT.back)}</button></div><div class="empty">${esc(TEXT.notFound)}</div>`;
    }
    const urls = event.image_urls ?? {};
    const frames = Object.keys(urls)
      .filter((name) => name.startsWith("frame"))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    const snapshot = urls.snapshot
      ? `<a href="${esc(urls.snapshot)}" target="_blank" rel="noopener"><img class="snapshot" alt="${esc(event.summary)}" src="${esc(urls.snapshot)}" data-event="${esc(event.event_id)}"></a>`
      : "";
    const section = (title, html) => (html ? `<h3>${esc(title)}</h3>${html}` : "");
    const list = (items) => (items.length ? `<ul>${items.join("")}</ul>` : "");
    const factors = list(
      (event.risk_factors ?? []).map(
        (f) =>
          `<li>${esc(f.factor)} <span class="sub">(${f.contribution >= 0 ? "+" : ""}${esc(f.contribution)})</span>${f.description ? ` — ${esc(f.description)}` : ""}</li>`,
      ),
    );
    const objects = list(
      (event.objects ?? []).map((o) => {
        const attributes = Object.entries(o.attributes ?? {})
          .filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
          .map(([k, v]) => `${esc(k)}: ${esc(v)}`)
          .join(", ");
        const confidence = Math.round((Number(o.confidence) || 0) * 100);
        return `<li>${esc(o.class)} <span class="sub">${confidence}%</span>${attributes ? ` — ${attributes}` : ""}</li>`;
      }),
    );
    const matches = list(
      (event.known_matches ?? []).map(
        (m) =>
          `<li>${esc(m.description ?? m.name ?? m.class)} <span class="sub">${Math.round((Number(m.similarity) || 0) * 100)}%</span></li>`,
      ),
    );
    const flags = list(
      (event.flags ?? []).map(
        (f) => `<li>${esc(f.type)}: ${esc(f.description)} <span class="sub">${esc(f.severity)}</span></li>`,
      ),
    );
    const framesHtml = frames.length
      ? `<div class="frames">${frames.map((name) => `<a href="${esc(urls[name])}" target="_blank" rel="noopener"><img alt="${esc(name)}" src="${esc(urls[name])}" data-event="${esc(event.event_id)}"></a>`).join("")}</div>`
      : "";
    const source = event.source === "llm" ? TEXT.sourceLlm : TEXT.sourceRules;
    const disabled = this._busy ? " disabled" : "";
    const toggle = (on, action, off, label, offLabel) =>
      `<button class="action${on ? " on" : ""}" data-feedback="${on ? off : action}"${disabled}>${esc(on ? offLabel : label)}</button>`;
    const names = new Set(this._enrolled ?? []);
    for (const m of event.known_matches ?? []) if (m.enrolled && m.name) names.add(m.name);
    const datalist = [...names].map((n) => `<option value="${esc(n)}">`).join("");
    const when =
      event.ended_at && event.ended_at !== event.started_at
        ? `${this._formatTime(event.started_at, true)} – ${this._formatTime(event.ended_at)}`
        : this._formatTime(event.started_at, true);
    return `<div class="detail-head">
        <button class="icon-button back" aria-label="${esc(TEXT.back)}">‹ ${esc(TEXT.back)}</button>
        <span class="camera">${esc(this._cameraName(event.camera_id, event.camera))}</span>
        ${this._badge(event)}
      </div>
      <div class="detail">
        ${snapshot}
        <p class="summary-full"><strong>${esc(event.summary)}</strong></p>
        <p class="sub">${when} · ${esc(source)}${event.occurrences > 1 ? ` · ${esc(TEXT.occurrences(event.occurrences))}` : ""}</p>
        ${this._marks(event)}
        ${section(TEXT.frames, framesHtml)}
        ${section(TEXT.reasoning, event.reasoning ? `<p>${esc(event.reasoning)}</p>` : "")}
        ${section(TEXT.action, event.recommended_action ? `<p>${esc(event.recommended_action)}</p>` : "")}
        ${section(TEXT.factors, factors)}
        ${section(TEXT.flags, flags)}
        ${section(TEXT.objects, objects)}
        ${section(TEXT.matches, matches)}
        ${section(TEXT.description, event.description ? `<p>${esc(event.description)}</p>` : "")}
        <div class="buttons">
          ${toggle(event.acknowledged, "acknowledge", "unacknowledge", TEXT.acknowledge, TEXT.unacknowledge)}
          <button class="action${event.false_alarm ? " on" : ""}" data-feedback="false_alarm"${disabled || (event.false_alarm ? " disabled" : "")}>${esc(TEXT.falseAlarm)}</button>
          ${toggle(event.keep, "keep", "unkeep", TEXT.keep, TEXT.unkeep)}
        </div>
        <form class="identity buttons">
          <input name="identity" list="hsi-names" placeholder="${esc(TEXT.thisIsPrompt)}" aria-label="${esc(TEXT.thisIsPrompt)}" value="${esc(event.identity ?? "")}">
          <datalist id="hsi-names">${datalist}</datalist>
          <button class="action" type="submit"${disabled}>${esc(TEXT.thisIs)}</button>
        </form>
      </div>`;
  }

  // --- Interaction ----------------------------------------------------------------------------

  _onClick(ev) {
    const path = ev.composedPath();
    const target = (selector) => path.find((el) => el instanceof Element && el.matches(selector));
    if (target(".back")) return this._close();
    if (target(".load-more")) return this._loadPage();
    const feedback = target("[data-feedback]");
    if (feedback) return this._feedback(feedback.dataset.feedback);
    if (target(".identity button[type=submit]")) {
      ev.preventDefault();
      const name = this.shadowRoot.querySelector(".identity input").value.trim();
      if (name) this._feedback("identity", name);
      return;
    }
    const row = target("[data-open]");
    if (row) {
      const event = this._events.find((e) => e.event_id === row.dataset.open);
      if (event) this._open(event);
    }
  }

  _onChange(ev) {
    const select = ev.composedPath()[0];
    if (select.classList?.contains("camera-filter")) this._state.camera = select.value || null;
    else if (select.classList?.contains("level-filter")) this._state.minLevel = select.value || null;
    else return;
    this._restart();
    this._render();
  }

  _onImageError(ev) {
    const img = ev.composedPath()[0];
    if (img instanceof HTMLImageElement && img.dataset.event) this._imageFailed(img.dataset.event);
  }
}

/**
 * The visual editor: Home Assistant's own form (ha-form) with the cameras the integration
 * watches (hsi/cameras), so users pick names, not ids.
 */
class HsiTimelineCardEditor extends HTMLElement {
  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this._loadCameras();
    if (this._form) this._form.hass = hass;
  }

  async _loadCameras() {
    try {
      const result = await this._hass.callWS({ type: "hsi/cameras" });
      this._cameras = result.cameras ?? [];
    } catch {
      this._cameras = [];
    }
    this._render();
  }

  _schema() {
    return [
      { name: "title", selector: { text: {} } },
      {
        name: "cameras",
        selector: {
          select: {
            multiple: true,
            mode: "list",
            options: (this._cameras ?? []).map((c) => ({ value: c.camera_id, label: c.name })),
          },
        },
      },
      {
        name: "min_level",
        selector: {
          select: {
            mode: "dropdown",
            options: LEVELS.map((l) => ({ value: l, label: LEVEL_NAMES[l] })),
          },
        },
      },
      { name: "show_filters", selector: { boolean: {} } },
      { name: "page_size", selector: { number: { min: 5, max: 200, mode: "box" } } },
    ];
  }

  async _render() {
    if (!this._config || !this._hass || !this._cameras) return;
    if (!customElements.get("ha-form")) await customElements.whenDefined("ha-form");
    if (!this._form) {
      this._form = document.createElement("ha-form");
      this._form.computeLabel = (schema) =>
        ({
          title: "Title",
          cameras: "Cameras (none: all)",
          min_level: "Minimum level",
          show_filters: "Show filters",
          page_size: "Events per page",
        })[schema.name] ?? schema.name;
      this._form.addEventListener("value-changed", (ev) => {
        ev.stopPropagation();
        const config = { ...ev.detail.value };
        // Only what differs from the defaults goes into the dashboard's YAML.
        const defaults = { show_filters: true, page_size: DEFAULT_PAGE_SIZE };
        for (const [key, value] of Object.entries(config)) {
          const empty = value === "" || value === undefined || value === null;
          if (empty || (Array.isArray(value) && !value.length) || defaults[key] === value) {
            delete config[key];
          }
        }
        this._config = config;
        this.dispatchEvent(
          new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }),
        );
      });
      this.appendChild(this._form);
    }
    this._form.hass = this._hass;
    this._form.schema = this._schema();
    this._form.data = { show_filters: true, page_size: DEFAULT_PAGE_SIZE, ...this._config };
  }
}

function defineElements() {
  if (!customElements.get(CARD_TYPE)) customElements.define(CARD_TYPE, HsiTimelineCard);
  if (!customElements.get(EDITOR_TYPE)) customElements.define(EDITOR_TYPE, HsiTimelineCardEditor);
}

// The frontend's core installs a scoped custom element registry polyfill that replaces
// window.customElements; an element defined before it lands in the native registry only, where
// the dashboard never looks ("Custom element doesn't exist", about one page load in two, as this
// module and the core load in parallel). So define into the registry the frontend uses: now if
// its core is in, else once its root element is defined.
if (window.CustomElementRegistryPolyfill || customElements.get("home-assistant")) {
  defineElements();
} else {
  customElements.whenDefined("home-assistant").then(defineElements);
}

window.customCards = window.customCards || [];
if (!window.customCards.some((card) => card.type === CARD_TYPE)) {
  window.customCards.push({
    type: CARD_TYPE,
    name: "Security timeline",
    description: "Home Security Intelligence: security events with snapshots, risk and feedback.",
    preview: true,
    documentationURL:
      "https://github.com/hsi-project/home-security-intelligence/blob/main/README.md#the-security-timeline-card",
  });
}

console.info(`%c HSI-TIMELINE-CARD %c ${VERSION} `, "color: white; background: #1565c0", "");
