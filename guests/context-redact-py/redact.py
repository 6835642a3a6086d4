"""Pure logic of the context-redact-py plugin: settings, secret redaction and
the turn plan. Nothing here imports the generated bindings, so it runs (and is
tested) under any Python 3.

The plan rules, the composed-prompt template and the `replay-turns` /
`max-context-bytes` settings are those of guests/context-default (the Rust
default context builder); all lengths are UTF-8 byte lengths, as in Rust.
"""

import json
import re

PLUGIN = "context-redact-py"

DEFAULT_REPLAY_TURNS = 2
DEFAULT_MAX_CONTEXT_BYTES = 16 * 1024
# A Rust `usize` on wasm32.
_USIZE_MAX = 2**32 - 1

SHORTENED = " …[shortened]"
HEADER = "Context from earlier turns of this session (oldest first):\n\n"
MARKER_PREFIX = "[REDACTED:"

SETTING_KEYS = ("replay-turns", "max-context-bytes", "patterns", "disable-default-patterns")


class SettingsError(ValueError):
    """The operator's settings are unusable; reported as `invalid`."""


def marker(kind):
    return f"[REDACTED:{kind}]"


# ---------------------------------------------------------------- patterns

# Each default rule: (kind, compiled regex, replacement function). A rule
# replaces the whole match unless the regex has a group named `secret`, in
# which case only that group is replaced and the rest of the match is kept.

_B64URL = r"[A-Za-z0-9_-]"
# Left boundary for tokens: not preceded by a character that could continue one.
_START = r"(?<![A-Za-z0-9_-])"
_END = r"(?![A-Za-z0-9_-])"

_DEFAULT_SPECS = [
    # PEM private key blocks, across lines (bodies up to 32 KiB; an 8192-bit
    # RSA key is under 7). Without a matching END line (a truncated paste),
    # the BEGIN line and the base64 lines after it go.
    (
        "private-key",
        r"-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY-----"
        r"(?:[\s\S]{0,32768}?-----END (?P=label)PRIVATE KEY-----"
        r"|(?:[ \t]*\r?\n?[ \t]*[A-Za-z0-9+/=]{8,})*)",
    ),
    # scheme://user:password@host: keep the scheme and the user.
    (
        "url-password",
        r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\[\]]*:(?P<secret>[^\s/?#]+)@",
    ),
    # JSON Web Tokens: header.payload.signature, the header starting eyJ ('{"').
    ("jwt", _START + r"eyJ" + _B64URL + r"{4,}\." + _B64URL + r"{4,}\." + _B64URL + r"+" + _END),
    # OpenAI-style keys: sk-..., sk-proj-..., sk-svcacct-... (20+ characters
    # after sk-, at least one digit, so kebab-case names such as sk-learn stay).
    ("openai-key", _START + r"sk-(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}" + _END),
    # GitHub tokens.
    ("github-token", _START + r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})" + _END),
    # AWS access key ids.
    ("aws-access-key-id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    # Slack tokens.
    ("slack-token", _START + r"xox[abpr]-[A-Za-z0-9-]{10,}" + _END),
    # key = value / key: value assignments whose key names a secret, in code,
    # env files, YAML, JSON ("password": "x") and query strings (?token=x).
    # Only the value is replaced; quotes around it are kept.
    (
        "credential",
        r"(?i)(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z0-9_.-]*?"
        r"(?:password|passwd|passphrase|secret|secret[_-]?key|secret[_-]?access[_-]?key"
        r"|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
        r"|access[_-]?token|auth[_-]?token|refresh[_-]?token|bearer[_-]?token|token))"
        r"(?P<kq>[\"']?)[ \t]*[:=][ \t]*"
        r"(?:(?P<q>[\"'])(?P<qv>(?:\\.|(?!(?P=q))[^\\\r\n])+)(?P=q)|(?P<uv>[^\s\"'`,;&)}\]=][^\s\"'`,;&)}\]]*))",
    ),
]

# Unquoted assignment values that are code rather than secrets
# (`password: str`, `api_key = os.environ["KEY"]`, `token=${TOKEN}`,
# `key = settings.api_key`). Not applied to URL query parameters.
_NOT_A_SECRET = re.compile(
    r"(?:\$|%|<|\{|\[|\(|\*{3}).*"
    r"|.*[(\[].*"
    r"|[A-Za-z_]+(?:\.[A-Za-z_]+)+"
    r"|(?:str|string|String|bytes|int|bool|None|null|nil|true|false|True|False|Optional|SecretStr|undefined)",
    re.ASCII,
)

DEFAULT_RULES = [(kind, re.compile(pattern)) for kind, pattern in _DEFAULT_SPECS]


def _replace(kind, regex):
    """The `re.sub` replacement function for one rule."""
    text_marker = marker(kind)

    if kind == "credential":

        def credential(m):
            if m.group("qv") is not None:
                value, quote = m.group("qv"), m.group("q")
                if value.startswith(MARKER_PREFIX) or value.startswith("$"):
                    return m.group(0)
                return m.group(0)[: m.start("q") - m.start(0)] + quote + text_marker + quote
            value = m.group("uv")
            in_query = m.start(0) > 0 and m.string[m.start(0) - 1] in "?&"
            if value.startswith(MARKER_PREFIX) or (not in_query and _NOT_A_SECRET.fullmatch(value)):
                return m.group(0)
            return m.group(0)[: m.start("uv") - m.start(0)] + text_marker

        return credential

    if "secret" in regex.groupindex:

        def group(m):
            if m.group("secret") is None or m.group("secret").startswith(MARKER_PREFIX):
                return m.group(0)
            start, end = m.start("secret") - m.start(0), m.end("secret") - m.start(0)
            whole = m.group(0)
            return whole[:start] + text_marker + whole[end:]

        return group

    def whole(m):
        return text_marker

    return whole


class Redactor:
    """Replaces secrets with `[REDACTED:<kind>]`. Idempotent: redacting
    redacted text changes nothing (unless a custom pattern matches a marker)."""

    def __init__(self, custom=(), defaults=True):
        rules = list(DEFAULT_RULES) if defaults else []
        rules += [("custom", regex) for regex in custom]
        self._rules = [(kind, regex, _replace(kind, regex)) for kind, regex in rules]

    def redact(self, text, counts=None):
        """`text` with its secrets replaced; `counts` (a dict), if given,
        gains the number of replacements per kind."""
        for kind, regex, replace in self._rules:
            if counts is None:
                text = regex.sub(replace, text)
                continue
            changed = 0

            def counting(m, replace=replace):
                nonlocal changed
                out = replace(m)
                if out != m.group(0):
                    changed += 1
                return out

            text = regex.sub(counting, text)
            if changed:
                counts[kind] = counts.get(kind, 0) + changed
        return text


# ---------------------------------------------------------------- settings


class Settings:
    def __init__(self, replay_turns=DEFAULT_REPLAY_TURNS, max_context_bytes=DEFAULT_MAX_CONTEXT_BYTES,
                 patterns=(), disable_default_patterns=False):
        self.replay_turns = replay_turns
        self.max_context_bytes = max_context_bytes
        self.patterns = list(patterns)
        self.disable_default_patterns = disable_default_patterns

    def redactor(self):
        return Redactor(self.patterns, defaults=not self.disable_default_patterns)


def _describe(value):
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "a sequence"
    if isinstance(value, dict):
        return "a map"
    return "null"


def _count(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _USIZE_MAX:
        raise SettingsError(f"`{key}` must be a non-negative integer, not {_describe(value)}")
    return value


def parse_settings(text):
    """Parse the `config.settings()` JSON; unknown keys and bad values raise
    SettingsError with a message naming the key."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise SettingsError(f"{PLUGIN} settings: not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{PLUGIN} settings: expected a table, not {_describe(raw)}")
    settings = Settings()
    try:
        for key, value in raw.items():
            if key == "replay-turns":
                settings.replay_turns = _count(key, value)
            elif key == "max-context-bytes":
                settings.max_context_bytes = _count(key, value)
            elif key == "disable-default-patterns":
                if not isinstance(value, bool):
                    raise SettingsError(f"`{key}` must be a boolean, not {_describe(value)}")
                settings.disable_default_patterns = value
            elif key == "patterns":
                if not isinstance(value, list):
                    raise SettingsError(f"`{key}` must be a list of regular expressions, not {_describe(value)}")
                compiled = []
                for i, pattern in enumerate(value):
                    if not isinstance(pattern, str):
                        raise SettingsError(f"`{key}[{i}]` must be a string, not {_describe(pattern)}")
                    try:
                        regex = re.compile(pattern)
                    except re.error as e:
                        raise SettingsError(f"`{key}[{i}]` ({json.dumps(pattern)}) is not a valid regular expression: {e}") from None
                    if regex.search("") is not None:
                        raise SettingsError(f"`{key}[{i}]` ({json.dumps(pattern)}) matches the empty string")
                    compiled.append(regex)
                settings.patterns = compiled
            else:
                expected = ", ".join(f"`{k}`" for k in SETTING_KEYS)
                raise SettingsError(f"unknown field `{key}`, expected one of {expected}")
    except SettingsError as e:
        raise SettingsError(f"{PLUGIN} settings: {e}") from None
    return settings


# ---------------------------------------------------------------- composing


def _blen(text):
    return len(text.encode("utf-8"))


def shorten(text, keep):
    """Cut `text` to at most `keep` bytes (on a character boundary) plus a marker."""
    data = text.encode("utf-8")
    if len(data) <= keep:
        return text
    keep = max(0, keep - _blen(SHORTENED))
    # Dropping the incomplete trailing character lands on the last boundary <= keep.
    return data[:keep].decode("utf-8", errors="ignore") + SHORTENED


def render(blocks, prompt):
    out = [HEADER]
    for i, (user, assistant) in enumerate(blocks):
        out.append(f"[Turn {i + 1}]\nUser: {user}\nAssistant: {assistant}\n\n")
    out.append("Current request:\n")
    out.append(prompt)
    return "".join(out)


def compose(turns, prompt, replay_turns, max_context_bytes):
    """`turns`: (prompt, response) pairs, oldest first."""
    recent = turns[max(0, len(turns) - replay_turns):] if replay_turns else []
    if not recent:
        return prompt
    budget = max_context_bytes
    blocks = [[user, assistant] for user, assistant in recent]
    while len(blocks) > 1 and _blen(render(blocks, prompt)) > budget:
        blocks.pop(0)
    overflow = max(0, _blen(render(blocks, prompt)) - budget)
    if overflow > 0:
        user, assistant = blocks[0]
        assistant_len = _blen(assistant)
        from_assistant = min(overflow, assistant_len)
        blocks[0][1] = shorten(assistant, assistant_len - from_assistant)
        blocks[0][0] = shorten(user, max(0, _blen(user) - (overflow - from_assistant)))
    return render(blocks, prompt)


# ---------------------------------------------------------------- the plan


def plan(settings, thread_id, turns, prompt, reset, counts=None):
    """The turn's plan with every secret redacted.

    `thread_id`: the session's agent thread id (None for none or no session);
    `turns`: the session's (prompt, response) pairs, oldest first.
    Returns ("resume", thread_id, prompt, recorded_prompt) or
    ("fresh", prompt, recorded_prompt).
    """
    redactor = settings.redactor()
    clean = redactor.redact(prompt, counts)
    if reset:
        thread_id, turns = None, []
    if thread_id is not None:
        return ("resume", thread_id, clean, clean)
    recent = turns[max(0, len(turns) - settings.replay_turns):] if settings.replay_turns else []
    cleaned = [(redactor.redact(u, counts), redactor.redact(a, counts)) for u, a in recent]
    composed = compose(cleaned, clean, settings.replay_turns, settings.max_context_bytes)
    return ("fresh", composed, clean)
