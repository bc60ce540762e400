"""Schemathesis hooks for erasure's CI run (loaded through SCHEMATHESIS_HOOKS by ./run).

What it does:

1. `before_load_schema`: merges spec-patch.json (beside this file) into the spec the server
   serves, adding only what the spec does not declare yet: the OpenAPI links of the
   sign-up -> log-in -> deletion -> receipt workflow and the `erasure_session` cookie security
   scheme. Once the server emits them itself this is a no-op (it prints what it added).
2. Only with ERASURE_ST_AUTH=1 ("session" pass): an auth provider that signs up a fresh free
   account and logs in to get the `erasure_session` cookie, and signs up a new one whenever
   that session is gone (the account was deleted, the session was logged out, or the server
   answered 401 `unauthenticated` to a request carrying it).
3. In both passes: a request carrying a session cookie that the server itself issued during the
   run (one a link passed on from POST /v1/sessions) counts as explicit, valid auth, so that the
   `ignored_auth` check probes it without / with a wrong cookie instead of mistaking it for a
   generated (invalid) credential.

Environment (set by ./run):
  ERASURE_ST_BASE_URL      http://127.0.0.1:PORT/api   (required with ERASURE_ST_AUTH=1)
  ERASURE_ST_AUTH          1: register the auth provider
  ERASURE_ST_EXTRA_PATCH   another JSON file merged like spec-patch.json (to try spec changes
                           before the server makes them; ./run never sets it)
  ERASURE_ST_AUTH_SOURCE   loopback address the provider's own sign-up/log-in requests come
                           from (default 127.0.0.2), so that the failed log-ins schemathesis
                           sends from 127.0.0.1 do not get the provider rate-limited (the
                           server counts failed log-ins per client address)
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import requests
import schemathesis
from requests.adapters import HTTPAdapter

HERE = Path(__file__).resolve().parent
COOKIE = "erasure_session"

# Session cookies the server has issued during this run (seen in Set-Cookie of any response).
ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()


def _log(message: str) -> None:
    print(f"[erasure hooks] {message}", file=sys.stderr, flush=True)


def _loopback(address: str) -> str:
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"[erasure hooks] refusing non-loopback address {address!r}")
    return address


# --- 0a. stateful scenarios come from many loopback clients ------------------------------------
# The server refuses every log-in from a client address once that address has failed 20 log-ins
# (login_max_failures 5 x 4 per address) within 15 minutes, even with the right password; the
# examples/coverage/fuzzing phases get 127.0.0.1 there within seconds (those 429s are answers the
# spec documents, and the checks validate them). A stateful scenario is one user's visit: each of
# its requests goes out on a fresh connection from a random address in 127.0.0.0/8, so the
# scenarios' own log-ins (sign-up -> log-in -> deletion -> receipt) are not refused because of
# failures earlier in the run. The per-VSee-ID limit still applies in full. Loopback only.
import random as _random  # noqa: E402
import schemathesis.engine.context as _engine_context  # noqa: E402

_THREAD = threading.local()
STATEFUL_RANDOM_SOURCE = os.environ.get("ERASURE_ST_STATEFUL_RANDOM_SOURCE", "1") == "1"


def _random_loopback() -> str:
    # Never 127.0.0.1 (the other phases) or 127.0.0.2 (the auth provider).
    return f"127.{_random.randint(1, 254)}.{_random.randint(0, 255)}.{_random.randint(1, 254)}"


class _StatefulSourceAdapter(HTTPAdapter):
    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if STATEFUL_RANDOM_SOURCE and getattr(_THREAD, "phase", None) == "stateful":
            one_off = _SourceAdapter(_random_loopback())
            try:
                response = one_off.send(request, *args, **kwargs)
                # Read it now: the connection goes away with the one-off pool.
                _ = response.content
                return response
            finally:
                one_off.close()
        return super().send(request, *args, **kwargs)


_original_make_session = _engine_context.make_session


def _make_session(*args: Any, **kwargs: Any) -> Any:
    session = _original_make_session(*args, **kwargs)
    session.mount("http://", _StatefulSourceAdapter())
    return session


_engine_context.make_session = _make_session


# --- 0b. sign-up as an entry point of stateful scenarios ----------------------------------------
# schemathesis 4.32's dependency analysis reads `vsee_id` in the SignUp/LogIn bodies as a foreign
# key to a "Vsee" resource that no operation returns, so it demotes POST /v1/accounts to a
# "fallback" root, never used while other roots exist (GET /v1/me, POST /v1/me/deletion):
# without this no scenario would start with a sign-up and the sign-up -> log-in link would never
# be followed. Sign-up creates the VSee ID; it is the natural first step.
import schemathesis.specs.openapi.stateful as _stateful  # noqa: E402

_original_is_root = _stateful.is_likely_root_transition


def _is_likely_root_transition(operation: Any, node: Any, produced_anywhere: set[str]) -> bool:
    if operation.method == "post" and operation.path == "/v1/accounts":
        return True
    return _original_is_root(operation, node, produced_anywhere)


_stateful.is_likely_root_transition = _is_likely_root_transition


# --- 0c. stateful scenarios start with a sign-up the server accepts ----------------------------
# The SignUp schema only says in prose what a VSee ID, email and password must look like, so
# almost no generated body is accepted (schemathesis reports that in the other phases: ST202 /
# positive_data_acceptance) and no stateful scenario would get past its first step. In the
# stateful phase only, 4 of 5 positive sign-up cases get a valid, unique vsee_id, email and
# password (names and any extra properties stay as generated); negative cases are left alone.
import hypothesis.strategies as _hst  # noqa: E402

STATEFUL_VALID_SIGNUP_PERCENT = int(os.environ.get("ERASURE_ST_STATEFUL_VALID_SIGNUP_PERCENT", "80"))


def _valid_signup(pair: tuple[Any, int]) -> Any:
    case, roll = pair
    meta = case.meta
    if (
        meta is None
        or str(getattr(meta.phase.name, "value", meta.phase.name)) != "stateful"
        or str(getattr(meta.generation.mode, "value", meta.generation.mode)) != "positive"
        or roll >= STATEFUL_VALID_SIGNUP_PERCENT
        or not isinstance(case.body, dict)
    ):
        return case
    vsee_id = f"sf.{secrets.token_hex(8)}"
    case.body = {
        **case.body,
        "vsee_id": vsee_id,
        "email": f"{vsee_id}@example.com",
        "password": f"Sf-{secrets.token_urlsafe(15)}",
    }
    return case


@schemathesis.hook
def before_generate_case(context: Any, strategy: Any) -> Any:
    operation = context.operation
    if operation is None or operation.method.lower() != "post" or operation.path != "/v1/accounts":
        return strategy
    return _hst.tuples(strategy, _hst.integers(min_value=0, max_value=99)).map(_valid_signup)


# --- 1. the spec patch ------------------------------------------------------------------------


def _merge_missing(target: dict[str, Any], patch: dict[str, Any], path: str, added: list[str]) -> None:
    for key, value in patch.items():
        here = f"{path}/{key}"
        if key == "links" and key in target:
            continue  # a response that declares links of its own keeps exactly those
        if key not in target:
            target[key] = copy.deepcopy(value)
            added.append(here)
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_missing(target[key], value, here, added)
        # anything the server already declares wins


def _declares_session_cookie(raw_schema: dict[str, Any]) -> bool:
    schemes = (raw_schema.get("components") or {}).get("securitySchemes") or {}
    return any(
        isinstance(scheme, dict)
        and scheme.get("type") == "apiKey"
        and scheme.get("in") == "cookie"
        and scheme.get("name") == COOKIE
        for scheme in schemes.values()
    )


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    if os.environ.get("ERASURE_ST_PATCH_SPEC", "1") == "0":
        return
    patch = json.loads((HERE / "spec-patch.json").read_text())
    if _declares_session_cookie(raw_schema):
        # The server describes its session cookie itself: use its scheme and requirements.
        patch.get("components", {}).pop("securitySchemes", None)
        for item in patch.get("paths", {}).values():
            for operation in item.values():
                operation.pop("security", None)
    added: list[str] = []
    _merge_missing(raw_schema, patch, "#", added)
    # For trying spec changes before the server makes them (never set by ./run).
    extra = os.environ.get("ERASURE_ST_EXTRA_PATCH")
    if extra:
        _merge_missing(raw_schema, json.loads(Path(extra).read_text()), "#", added)
    if added:
        _log("spec-patch.json added to the served spec (the server does not declare them yet):")
        for item in added:
            _log(f"  {item}")
    else:
        _log("the served spec already declares everything in spec-patch.json")


# --- 2/3. cookies the server issues, and the auth provider ------------------------------------


def _issued_cookie(response: Any) -> str | None:
    values = response.headers.get("set-cookie") or response.headers.get("Set-Cookie") or []
    if isinstance(values, str):
        values = [values]
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part.startswith(f"{COOKIE}="):
                token = part[len(COOKIE) + 1 :].split(";", 1)[0]
                if token:
                    return token
    return None


def _is_issued(value: Any) -> bool:
    return isinstance(value, str) and value in ISSUED


class _SessionSource:
    """One live session of a fresh free account; replaced when it is gone."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.email: str | None = None
        self.accounts = 0
        self.http = requests.Session()
        source = _loopback(os.environ.get("ERASURE_ST_AUTH_SOURCE", "127.0.0.2"))
        adapter = _SourceAdapter(source)
        self.http.mount("http://", adapter)

    @property
    def base(self) -> str:
        base = os.environ.get("ERASURE_ST_BASE_URL")
        if not base:
            raise RuntimeError("ERASURE_ST_BASE_URL is not set")
        host = requests.utils.urlparse(base).hostname or ""
        _loopback(host)
        return base.rstrip("/")

    def current(self) -> str:
        with self.lock:
            if self.token is None:
                self.token, self.email = self._new_session()
            return self.token

    def forget(self, token: str) -> None:
        with self.lock:
            if self.token == token:
                self.token = None

    def _new_session(self) -> tuple[str, str]:
        self.accounts += 1
        vsee_id = f"st-{secrets.token_hex(6)}"
        email = f"{vsee_id}@example.com"
        # 8-128 characters, and random, so never one of the common passwords the server refuses.
        password = f"St-{secrets.token_urlsafe(18)}"
        signup = self.http.post(
            f"{self.base}/v1/accounts",
            json={
                "vsee_id": vsee_id,
                "email": email,
                "password": password,
                "first_name": "Schema",
                "last_name": "Thesis",
            },
            timeout=10,
        )
        if signup.status_code != 201:
            raise RuntimeError(f"sign-up answered {signup.status_code}: {signup.text[:300]}")
        login = self.http.post(
            f"{self.base}/v1/sessions", json={"vsee_id": vsee_id, "password": password}, timeout=10
        )
        if login.status_code == 429:
            raise RuntimeError(
                f"log-in rate-limited (429, Retry-After {login.headers.get('retry-after')}): "
                "the provider's source address has too many failed log-ins"
            )
        if login.status_code != 200:
            raise RuntimeError(f"log-in answered {login.status_code}: {login.text[:300]}")
        token = login.cookies.get(COOKIE)
        if not token:
            raise RuntimeError(f"log-in set no {COOKIE} cookie: {login.headers.get('set-cookie')!r}")
        with _ISSUED_LOCK:
            ISSUED.add(token)
        return token, email


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


SESSIONS: _SessionSource | None = None

if os.environ.get("ERASURE_ST_AUTH") == "1":
    SESSIONS = _SessionSource()

    # refresh_interval=None: no time-based caching by schemathesis (and no blind re-login on
    # every 401, which on this API also means "wrong password"); _SessionSource keeps the
    # session and after_call below drops it exactly when the server says it is gone.
    @schemathesis.auth(refresh_interval=None)
    class ErasureSession:
        def get(self, case: Any, context: Any) -> str:
            assert SESSIONS is not None
            return SESSIONS.current()

        def set(self, case: Any, data: str, context: Any) -> None:
            if case.cookies is None:
                case.cookies = {}
            # A session a link passed on (from POST /v1/sessions) is the one under test: keep it.
            if _is_issued(case.cookies.get(COOKIE)):
                return
            case.cookies[COOKIE] = data


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    meta = case.meta
    _THREAD.phase = str(getattr(meta.phase.name, "value", meta.phase.name)) if meta is not None else None
    # A real session cookie (issued by the server in this run) is explicit auth, not a generated one.
    if _is_issued((case.cookies or {}).get(COOKIE)):
        case._has_explicit_auth = True


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    token = _issued_cookie(response)
    if token:
        with _ISSUED_LOCK:
            ISSUED.add(token)
    if SESSIONS is None:
        return
    sent = (case.cookies or {}).get(COOKIE)
    if not sent:
        return
    method = case.operation.method.upper()
    path = case.operation.path
    gone = (
        (method == "POST" and path == "/v1/me/deletion" and response.status_code == 202)
        or (method == "DELETE" and path == "/v1/sessions/current" and response.status_code == 204)
    )
    if not gone and response.status_code == 401:
        try:
            gone = response.json().get("code") == "unauthenticated"
        except Exception:
            gone = False
    if gone:
        SESSIONS.forget(sent)
