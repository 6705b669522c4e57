#!/usr/bin/env python3
"""The CI side of driftd's training loop: verify a driftd event, register a
retrained model back.

Copy this file into the repository whose pipeline driftd triggers (Python 3.8
or newer, standard library only). Two commands:

  driftd_ci.py verify --gitlab | --github
      Checks the Standard Webhooks signature of the CloudEvent driftd sent,
      with the secret(s) in DRIFTD_WEBHOOK_SECRET (the target's secret_env
      value, whsec_...; several space-separated during a rotation), and that
      it is fresh (DRIFTD_SIGNATURE_TOLERANCE seconds, default 3600: a
      pipeline may wait in a queue). Exits 1, saying why, when it does not
      hold; a pipeline must not act on an unverified event, since anyone with
      the trigger token can set variables.
      GitLab: reads the trigger variables DRIFTD_EVENT, DRIFTD_WEBHOOK_ID,
      DRIFTD_WEBHOOK_TIMESTAMP and DRIFTD_WEBHOOK_SIGNATURE, and writes the
      verified fields as DRIFTD_VERIFIED_* to a dotenv file (--out, default
      driftd.env) for `artifacts: reports: dotenv`.
      GitHub: reads client_payload.event and client_payload.webhook of the
      repository_dispatch event ($GITHUB_EVENT_PATH) and writes the verified
      fields (model, model_version, action, event_id, deploy_version, rule,
      reason) to $GITHUB_OUTPUT.

  driftd_ci.py register --model M --version V [--metadata KEY=VALUE ...]
      Registers V as the candidate of M: POST
      $DRIFTD_URL/api/v1/models/M/candidates with the bearer token in
      DRIFTD_API_TOKEN. Connection errors and 5xx are retried (5 attempts,
      backoff); any other refusal exits 1 with driftd's message.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

FIELDS = {
    "model": lambda e: e["data"].get("model"),
    "model_version": lambda e: e["data"].get("model_version"),
    "action": lambda e: e["data"].get("action"),
    "event_id": lambda e: e.get("id"),
    "event_type": lambda e: e.get("type"),
    "deploy_version": lambda e: (e["data"].get("versions") or {}).get("deploy"),
    "rule": lambda e: e["data"].get("rule"),
    "reason": lambda e: e["data"].get("reason"),
}


class Refused(Exception):
    """The event must not be acted on; the message says why."""


def env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        raise Refused(f"{name} is not set")
    return value


def keys(secrets):
    out = []
    for s in secrets.split():
        if not s.startswith("whsec_"):
            raise Refused("DRIFTD_WEBHOOK_SECRET must be whsec_<base64> (as driftd's target has it)")
        try:
            out.append(base64.b64decode(s[len("whsec_"):], validate=True))
        except ValueError:
            raise Refused("DRIFTD_WEBHOOK_SECRET is not valid base64 after whsec_") from None
    if not out:
        raise Refused("DRIFTD_WEBHOOK_SECRET is empty")
    return out


def verify(event_text, webhook_id, timestamp, signature, secrets, tolerance, now=None):
    """The Standard Webhooks check: a v1 signature of id.timestamp.body that
    one of the secrets gives, a timestamp within the tolerance, and the
    signed id equal to the event's own id. Returns the parsed event."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise Refused(f"the webhook timestamp {timestamp!r} is not an integer") from None
    now = int(time.time()) if now is None else now
    if abs(now - ts) > tolerance:
        raise Refused(f"the event was signed {now - ts} s ago, beyond the {tolerance} s tolerance")
    message = f"{webhook_id}.{ts}.".encode() + event_text.encode()
    expected = [
        "v1," + base64.b64encode(hmac.new(k, message, hashlib.sha256).digest()).decode()
        for k in keys(secrets)
    ]
    given = [s for s in signature.split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise Refused("no signature matches: the event was changed, or the secret differs from driftd's")
    try:
        event = json.loads(event_text)
    except ValueError as e:
        raise Refused(f"the signed event is not JSON: {e}") from None
    if event.get("id") != webhook_id:
        raise Refused("the signed id is not the event's id")
    if not isinstance(event.get("data"), dict):
        raise Refused("the event has no data object")
    return event


def tolerance():
    raw = os.environ.get("DRIFTD_SIGNATURE_TOLERANCE", "3600")
    try:
        return int(raw)
    except ValueError:
        raise Refused(f"DRIFTD_SIGNATURE_TOLERANCE must be seconds, got {raw!r}") from None


def cmd_verify(args):
    secrets = env("DRIFTD_WEBHOOK_SECRET")
    if args.gitlab:
        event = verify(
            env("DRIFTD_EVENT"),
            env("DRIFTD_WEBHOOK_ID"),
            env("DRIFTD_WEBHOOK_TIMESTAMP"),
            env("DRIFTD_WEBHOOK_SIGNATURE"),
            secrets,
            tolerance(),
        )
    else:
        with open(env("GITHUB_EVENT_PATH"), encoding="utf-8") as f:
            payload = (json.load(f) or {}).get("client_payload") or {}
        hook = payload.get("webhook")
        if not isinstance(hook, dict) or not isinstance(payload.get("event"), str):
            raise Refused("client_payload has no signed event: give the github target a secret_env")
        event = verify(
            payload["event"],
            str(hook.get("id", "")),
            hook.get("timestamp"),
            str(hook.get("signature", "")),
            secrets,
            tolerance(),
        )
    fields = {k: f(event) or "" for k, f in FIELDS.items()}
    for k, v in fields.items():
        if "\n" in str(v):
            raise Refused(f"the event's {k} has a line break")
    if args.gitlab:
        with open(args.out, "w", encoding="utf-8") as f:
            for k, v in fields.items():
                f.write(f"DRIFTD_VERIFIED_{k.upper()}={v}\n")
    else:
        with open(env("GITHUB_OUTPUT"), "a", encoding="utf-8") as f:
            for k, v in fields.items():
                f.write(f"{k}={v}\n")
    print(
        f"driftd: verified {fields['event_type']} {fields['event_id']} for "
        f"{fields['model']} {fields['model_version']}: {fields['reason']}"
    )


def cmd_register(args):
    url = env("DRIFTD_URL").rstrip("/")
    token = env("DRIFTD_API_TOKEN")
    metadata = {}
    for item in args.metadata or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Refused(f"--metadata takes KEY=VALUE, got {item!r}")
        metadata[key] = value
    body = json.dumps({"version": args.version, "metadata": metadata}).encode()
    path = f"{url}/api/v1/models/{urllib.parse.quote(args.model, safe='')}/candidates"
    attempts = max(1, args.attempts)
    problem = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            path,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                answer = json.loads(r.read() or b"{}")
            print(f"driftd: candidate {args.version} of {args.model}: {answer.get('outcome', 'registered')}")
            return
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            if e.code < 500:
                raise Refused(f"driftd refused the candidate (HTTP {e.code}): {text}") from None
            problem = f"HTTP {e.code}: {text}"
        except (urllib.error.URLError, OSError) as e:
            problem = str(e)
        if attempt < attempts:
            print(f"driftd: attempt {attempt} failed ({problem}); retrying", file=sys.stderr)
            time.sleep(min(30, 2 ** attempt))
    raise Refused(f"could not reach driftd at {url}: {problem}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify the signed driftd event that started this pipeline")
    where = v.add_mutually_exclusive_group(required=True)
    where.add_argument("--gitlab", action="store_true", help="from GitLab trigger variables")
    where.add_argument("--github", action="store_true", help="from a repository_dispatch event")
    v.add_argument("--out", default="driftd.env", help="GitLab: the dotenv file to write")
    r = sub.add_parser("register", help="register a retrained model as the candidate")
    r.add_argument("--model", required=True)
    r.add_argument("--version", required=True)
    r.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    r.add_argument("--attempts", type=int, default=5)
    args = p.parse_args(argv)
    try:
        (cmd_verify if args.command == "verify" else cmd_register)(args)
    except Refused as e:
        print(f"driftd: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
