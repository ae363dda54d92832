"""A notify target for the end-to-end restart tests (tests/e2e only, never shipped).

`notify: [{platform: hsi_notify_recorder, name: recorder}]` gives the action `notify.recorder`,
which appends every call (title, message, data) as one JSON line to
`<config>/notify-recorder.jsonl`. A file, not memory: the tests count the alerts of one
incident across Home Assistant restarts, which empty the notification drawer.
"""
