"""Tests of the plugin's pure logic (redact.py), without the generated
bindings or a wasm runtime:  python3 test_redact.py"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redact  # noqa: E402
from redact import SHORTENED, Redactor, SettingsError, compose, parse_settings, plan, render, shorten  # noqa: E402

R = Redactor()

# Fake secrets, assembled at run time so that no scanner mistakes this file for a leak.
OPENAI = "sk-" + "abcDEF1234567890ghijKLMNopqrST"
OPENAI_PROJ = "sk-proj-" + "Ab12_cd34-EF56gh78IJ90kl12MN34op56QR78st90"
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GHO = "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GHU = "ghu_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GHS = "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GHR = "ghr_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GH_PAT = "github_" + "pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
ASIA = "ASIA" + "Y34FZKBOKMUTVV7A"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_P = "xoxp-" + "1234567890-0987654321-abcdef"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
       + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n"
       "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
       "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
       "-----END RSA PRIVATE KEY-----")


class DefaultPatterns(unittest.TestCase):
    def check(self, text, expected):
        self.assertEqual(R.redact(text), expected)

    def test_openai_keys(self):
        self.check(f"key {OPENAI} here", "key [REDACTED:openai-key] here")
        self.check(f"export OPENAI_API_KEY={OPENAI_PROJ}", "export OPENAI_API_KEY=[REDACTED:openai-key]")
        self.check("use sk-learn and sk-some-long-kebab-case-name-here", "use sk-learn and sk-some-long-kebab-case-name-here")
        self.check("task-sk-" + "abcDEF1234567890ghijKLMN", "task-sk-" + "abcDEF1234567890ghijKLMN")

    def test_github_tokens(self):
        for token in (GHP, GHO, GHU, GHS, GHR, GH_PAT):
            self.check(f"token: {token}.", "token: [REDACTED:github-token].")
        self.check("ghp_short", "ghp_short")

    def test_aws_access_key_ids(self):
        self.check(f"id={AKIA} and {ASIA}", "id=[REDACTED:aws-access-key-id] and [REDACTED:aws-access-key-id]")
        self.check("AKIA" + "SHORT", "AKIA" + "SHORT")
        self.check("XAKIA" + "IOSFODNN7EXAMPLE", "XAKIA" + "IOSFODNN7EXAMPLE")

    def test_slack_tokens(self):
        self.check(f"{SLACK} {SLACK_P}", "[REDACTED:slack-token] [REDACTED:slack-token]")
        self.check("xoxc-" + "1234567890-abc", "xoxc-" + "1234567890-abc")

    def test_jwts(self):
        self.check(f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:jwt]")
        self.check("eyJ.not.a-token", "eyJ.not.a-token")

    def test_pem_private_keys(self):
        self.check(f"my key:\n{PEM}\nthanks", "my key:\n[REDACTED:private-key]\nthanks")
        for label in ("", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "):
            block = PEM.replace("RSA ", label)
            self.check(f"a {block} b", "a [REDACTED:private-key] b")
        # JSON-escaped newlines.
        escaped = PEM.replace("\n", "\\n")
        self.check(f'{{"key": "{escaped}"}}', '{"key": "[REDACTED:private-key]"}')
        # Truncated paste: the BEGIN line and the base64 lines after it.
        truncated = PEM.rsplit("\n", 1)[0]
        self.check(f"{truncated}\nwhat is wrong?", "[REDACTED:private-key]\nwhat is wrong?")
        self.check("public keys stay: -----BEGIN PUBLIC KEY-----", "public keys stay: -----BEGIN PUBLIC KEY-----")

    def test_url_passwords(self):
        self.check("postgres://admin:s3cr3t@db.internal:5432/app", "postgres://admin:[REDACTED:url-password]@db.internal:5432/app")
        self.check("https://user:p@ss:w0rd@example.com/x", "https://user:[REDACTED:url-password]@example.com/x")
        self.check("redis://:pw123@cache:6379", "redis://:[REDACTED:url-password]@cache:6379")
        self.check("http://example.com:8080/path@x", "http://example.com:8080/path@x")
        self.check("git@github.com:org/repo.git", "git@github.com:org/repo.git")
        self.check("ssh://git@github.com/org/repo", "ssh://git@github.com/org/repo")

    def test_assignments(self):
        self.check("password=hunter2", "password=[REDACTED:credential]")
        self.check("DB_PASSWORD: hunter2\nnext: 1", "DB_PASSWORD: [REDACTED:credential]\nnext: 1")
        self.check('api_key: "abc123"', 'api_key: "[REDACTED:credential]"')
        self.check('{"password": "hunter2", "user": "bob"}', '{"password": "[REDACTED:credential]", "user": "bob"}')
        self.check("client_secret = 'xyz'", "client_secret = '[REDACTED:credential]'")
        self.check("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=[REDACTED:credential]")
        self.check("https://x.io/cb?access_token=abc.def&state=1", "https://x.io/cb?access_token=[REDACTED:credential]&state=1")
        self.check("apiKey=abc", "apiKey=[REDACTED:credential]")
        self.check("auth_token: ya29.a0AfH6SMBx", "auth_token: [REDACTED:credential]")
        self.check("x?token=$abc", "x?token=[REDACTED:credential]")
        self.check("Password:   s3cret!", "Password:   [REDACTED:credential]")
        self.check('password = "it\'s mine" ok', 'password = "[REDACTED:credential]" ok')
        self.check('{"password": "a\\"b", "n": 1}', '{"password": "[REDACTED:credential]", "n": 1}')

    def test_assignments_leave_code_alone(self):
        for text in (
            "def login(password: str, api_key: Optional[str] = None):",
            'password = os.environ["DB_PASSWORD"]',
            "token = getpass()",
            "api_key = settings.api_key",
            "const token = process.env.GH_TOKEN;",
            "if password == other:",
            "password=${DB_PASSWORD}",
            "password: $PASSWORD",
            "secret: <your secret here>",
            "password: ***",
            "max_tokens=5 token_count=3",
            "password:\n  nested: true",
        ):
            self.check(text, text)

    def test_specific_kind_wins_over_assignment(self):
        self.check(f"api_key={OPENAI}", "api_key=[REDACTED:openai-key]")
        self.check(f"GITHUB_TOKEN: {GHP}", "GITHUB_TOKEN: [REDACTED:github-token]")

    def test_idempotent(self):
        text = (f"{OPENAI} {GHP} {AKIA} {SLACK} {JWT}\n{PEM}\n"
                "postgres://u:pw@h/db password=x api_key: 'y' ")
        once = R.redact(text)
        self.assertEqual(R.redact(once), once)
        for secret in (OPENAI, GHP, AKIA, SLACK, JWT, "MIIEow", ":pw@", "=x ", "'y'"):
            self.assertNotIn(secret, once)

    def test_plain_text_untouched(self):
        text = "Refactor the tokenizer; the password field on the login page is too narrow. Café ☕"
        self.check(text, text)

    def test_counts(self):
        counts = {}
        R.redact(f"{OPENAI} {OPENAI_PROJ} password=x password: str", counts)
        self.assertEqual(counts, {"openai-key": 2, "credential": 1})


class Settings(unittest.TestCase):
    def test_defaults(self):
        s = parse_settings("{}")
        self.assertEqual((s.replay_turns, s.max_context_bytes, s.patterns, s.disable_default_patterns),
                         (2, 16384, [], False))

    def test_values(self):
        s = parse_settings(json.dumps({"replay-turns": 0, "max-context-bytes": 10, "patterns": ["ACME-[0-9]{6}"],
                                       "disable-default-patterns": True}))
        self.assertEqual((s.replay_turns, s.max_context_bytes, s.disable_default_patterns), (0, 10, True))
        r = s.redactor()
        self.assertEqual(r.redact(f"ACME-123456 {OPENAI}"), f"[REDACTED:custom] {OPENAI}")

    def test_custom_patterns_add_to_defaults(self):
        r = parse_settings('{"patterns": ["ACME-[0-9]{6}", "(?i)internal-[a-z]+"]}').redactor()
        self.assertEqual(r.redact(f"ACME-123456 Internal-foo {GHP}"),
                         "[REDACTED:custom] [REDACTED:custom] [REDACTED:github-token]")

    def test_custom_pattern_secret_group(self):
        r = parse_settings(r'{"patterns": ["pin (?P<secret>\\d{4})"]}').redactor()
        self.assertEqual(r.redact("my pin 1234 ok"), "my pin [REDACTED:custom] ok")

    def test_errors_name_the_key(self):
        cases = {
            '{"replay_turns": 1}': "unknown field `replay_turns`",
            '{"colour": "red"}': "unknown field `colour`",
            '{"replay-turns": -1}': "`replay-turns`",
            '{"replay-turns": true}': "`replay-turns`",
            '{"max-context-bytes": 1.5}': "`max-context-bytes`",
            '{"max-context-bytes": "10"}': "`max-context-bytes`",
            '{"patterns": "x"}': "`patterns`",
            '{"patterns": [1]}': "`patterns[0]`",
            '{"patterns": ["ok", "("]}': "`patterns[1]`",
            '{"patterns": ["a*"]}': "matches the empty string",
            '{"disable-default-patterns": "yes"}': "`disable-default-patterns`",
            "[]": "expected a table",
            "not json": "not JSON",
        }
        for text, needle in cases.items():
            with self.assertRaises(SettingsError, msg=text) as caught:
                parse_settings(text)
            self.assertIn(needle, str(caught.exception))
            self.assertTrue(str(caught.exception).startswith("context-redact-py settings: "))


def rust_shorten_reference(text, keep):
    """A direct transliteration of the Rust `shorten`, on bytes."""
    data = text.encode()
    if len(data) <= keep:
        return text
    keep = max(0, keep - len(SHORTENED.encode()))
    cut = next(i for i in range(keep, -1, -1) if i == len(data) or (data[i] & 0xC0) != 0x80)
    return data[:cut].decode() + SHORTENED


class Compose(unittest.TestCase):
    def test_no_turns_is_the_prompt(self):
        self.assertEqual(compose([], "hi", 2, 16384), "hi")
        self.assertEqual(compose([("a", "b")], "hi", 0, 16384), "hi")

    def test_template(self):
        got = compose([("p1", "r1"), ("p2", "r2"), ("p3", "r3")], "now", 2, 16384)
        self.assertEqual(got, "Context from earlier turns of this session (oldest first):\n\n"
                              "[Turn 1]\nUser: p2\nAssistant: r2\n\n"
                              "[Turn 2]\nUser: p3\nAssistant: r3\n\n"
                              "Current request:\nnow")

    def test_drops_oldest_then_shortens(self):
        turns = [("a" * 100, "b" * 100), ("c" * 100, "d" * 100)]
        one = len(render([("c" * 100, "d" * 100)], "q").encode())
        got = compose(turns, "q", 2, one)
        self.assertEqual(got, render([("c" * 100, "d" * 100)], "q"))
        got = compose(turns, "q", 2, one - 30)
        self.assertEqual(len(got.encode()), one - 30)
        self.assertIn("Assistant: " + "d" * 55 + SHORTENED, got)
        self.assertIn("User: " + "c" * 100 + "\n", got)
        # Overflow larger than the answer comes out of the question too.
        got = compose(turns, "q", 2, one - 150)
        self.assertIn("User: " + "c" * 35 + SHORTENED + "\nAssistant: " + SHORTENED + "\n", got)

    def test_shorten_matches_rust_on_multibyte_text(self):
        text = "é☕𝄞a" * 20
        for keep in range(0, len(text.encode()) + 2):
            self.assertEqual(shorten(text, keep), rust_shorten_reference(text, keep), keep)

    def test_budget_is_bytes(self):
        turns = [("é" * 50, "☕" * 50)]
        full = render(turns, "q")
        got = compose(turns, "q", 2, len(full.encode()) - 1)
        self.assertTrue(got.endswith("q"))
        self.assertLessEqual(len(got.encode()), len(full.encode()) - 1)


class Plan(unittest.TestCase):
    S = parse_settings("{}")

    def test_resume_redacts_prompt_and_recorded_prompt(self):
        got = plan(self.S, "019a-thread", [("x", "y")], f"use {OPENAI}", False)
        self.assertEqual(got, ("resume", "019a-thread", "use [REDACTED:openai-key]", "use [REDACTED:openai-key]"))

    def test_new_session_is_fresh(self):
        self.assertEqual(plan(self.S, None, [], f"{GHP}", False),
                         ("fresh", "[REDACTED:github-token]", "[REDACTED:github-token]"))

    def test_reset_drops_thread_and_turns(self):
        self.assertEqual(plan(self.S, "t", [("a", "b")], "go", True), ("fresh", "go", "go"))

    def test_replay_is_composed_from_redacted_turns(self):
        turns = [("old", "old"), (f"my key {AKIA}", f"stored postgres://u:pw@db/x"), ("password=abc", JWT)]
        kind, prompt, recorded = plan(self.S, None, turns, f"now {SLACK}", False)
        self.assertEqual(kind, "fresh")
        self.assertEqual(recorded, "now [REDACTED:slack-token]")
        self.assertEqual(prompt, compose([("my key [REDACTED:aws-access-key-id]", "stored postgres://u:[REDACTED:url-password]@db/x"),
                                          ("password=[REDACTED:credential]", "[REDACTED:jwt]")],
                                         recorded, 2, 16384))
        for secret in (AKIA, ":pw@", "abc", JWT, SLACK):
            self.assertNotIn(secret, prompt)

    def test_budget_applies_after_redaction(self):
        settings = parse_settings('{"max-context-bytes": 200}')
        turns = [(PEM, "ok")]
        kind, prompt, _ = plan(settings, None, turns, "q", False)
        self.assertIn("User: [REDACTED:private-key]\n", prompt)
        self.assertLessEqual(len(prompt.encode()), 200)

    def test_empty_thread_id_still_resumes(self):
        self.assertEqual(plan(self.S, "", [], "p", False)[0], "resume")


if __name__ == "__main__":
    unittest.main(verbosity=1)
