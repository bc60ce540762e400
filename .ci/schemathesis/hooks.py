"""Schemathesis hooks for erasure's CI run, loaded through SCHEMATHESIS_HOOKS by ./run.
Written for schemathesis 4.32.5 (pinned in ./run); sections 3b and 3c reach into its internals.

1. Spec patch (`before_load_schema`): merges spec-patch.json into the spec the server serves,
   adding only what the spec does not declare: the OpenAPI links of the workflow
   sign-up -> log-in -> deletion -> receipt (plus log-in -> me / re-authentication / log-out),
   and, if the spec has no cookie security scheme, the `erasure_session` one. A response that
   declares links of its own keeps exactly those, so once the server emits its links the patch
   stops adding any. What it adds is printed at the start of every pass.
2. Session pass only (ERASURE_ST_AUTH=1): an auth provider. It signs up a fresh free account,
   logs in, and puts the `erasure_session` cookie on every request; when that session is gone
   (the account was deleted, the session logged out, or the server answered 401
   `unauthenticated` to a request carrying it) the next request gets a new account and session.
   Staff pass (ERASURE_ST_AUTH=staff): the same with the `erasure_staff` cookie of the agent
   ./run created (ERASURE_ST_STAFF_EMAIL, password on ERASURE_ST_STAFF_PASSWORD), logged in
   again whenever its session is gone.
3. Stateful phase:
   a. sign-up bodies the server accepts (4 of 5 positive ones), so scenarios get past step one;
   b. POST /v1/accounts is an entry point of scenarios (schemathesis' own heuristic demotes it);
   c. every request of the phase comes from its own random 127.x.y.z address, so the failed
      log-ins of earlier phases (and of other scenarios) do not get the scenarios' log-ins
      refused by the server's per-client-address limit.
4. Both passes: a request carrying a session cookie the server issued in this run (one a link
   passed on from POST /v1/sessions) counts as explicit auth, so `ignored_auth` probes it
   without / with a wrong cookie instead of taking it for a generated credential.

Environment (./run sets the first two):
  ERASURE_ST_BASE_URL      http://127.0.0.1:PORT/api (loopback only)
  ERASURE_ST_AUTH          1: register the auth provider ("session" pass)
  ERASURE_ST_AUTH_SOURCE   loopback address of the provider's own sign-up/log-in requests
                           (default 127.0.0.2: never the address the fuzzer fails log-ins from)
  ERASURE_ST_INBOUND_SECRET  the server's support.inbound_secret: bodies posted to the mail
                           webhook are signed with it (see _sign_inbound)
  ERASURE_ST_EXTRA_PATCH   a JSON file merged like spec-patch.json, to try spec changes before
                           the server makes them (./run never sets it)
  ERASURE_ST_PATCH_SPEC=0  do not patch the spec at all
  ERASURE_ST_STATEFUL_RANDOM_SOURCE=0        stateful requests come from 127.0.0.1 too
  ERASURE_ST_STATEFUL_VALID_SIGNUP_PERCENT   default 80
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import ipaddress
import json
import os
import random
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import hypothesis.strategies as hst
import requests
import schemathesis
import schemathesis.engine.context as st_engine_context
import schemathesis.specs.openapi.stateful as st_stateful
from requests.adapters import HTTPAdapter

HERE = Path(__file__).resolve().parent
COOKIE = "erasure_session"
STAFF_COOKIE = "erasure_staff"
SIGN_UP = ("post", "/v1/accounts")


def _log(message: str) -> None:
    print(f"[erasure hooks] {message}", file=sys.stderr, flush=True)


def _loopback(address: str) -> str:
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"[erasure hooks] refusing non-loopback address {address!r}")
    return address


def _phase(case: Any) -> str | None:
    meta = case.meta
    if meta is None:
        return None
    return str(getattr(meta.phase.name, "value", meta.phase.name))


def _is_operation(operation: Any, key: tuple[str, str]) -> bool:
    return operation is not None and (operation.method.lower(), operation.path) == key


class _SourceAdapter(HTTPAdapter):
    """Connections from one given (loopback) source address."""

    def __init__(self, source: str) -> None:
        self._source = _loopback(source)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


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
        # anything else the server declares wins


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
        _log("ERASURE_ST_PATCH_SPEC=0: testing the spec exactly as served")
        return
    added: list[str] = []
    extra = os.environ.get("ERASURE_ST_EXTRA_PATCH")
    if extra:
        # First, as if the server declared it: spec-patch.json then only fills what is still missing.
        _merge_missing(raw_schema, json.loads(Path(extra).read_text()), "#", added)
    patch = json.loads((HERE / "spec-patch.json").read_text())
    if _declares_session_cookie(raw_schema):
        # The server describes its session cookie itself: its scheme and requirements hold.
        patch.get("components", {}).pop("securitySchemes", None)
        for item in patch.get("paths", {}).values():
            for operation in item.values():
                operation.pop("security", None)
    _merge_missing(raw_schema, patch, "#", added)
    if added:
        _log("added to the served spec (it does not declare them):")
        for item in added:
            _log(f"  {item}")
    else:
        _log("the served spec already declares everything in spec-patch.json")


# --- 2. the session pass' auth provider -------------------------------------------------------

# Session cookies the server issued during this run (Set-Cookie of any response, and the
# provider's log-ins).
ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()


def _remember(token: str) -> None:
    with _ISSUED_LOCK:
        ISSUED.add(token)


def _is_issued(value: Any) -> bool:
    return isinstance(value, str) and value in ISSUED


class _SessionSource:
    """The live session of a fresh free account; replaced when it is gone."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.accounts = 0
        self.http = requests.Session()
        self.http.mount("http://", _SourceAdapter(os.environ.get("ERASURE_ST_AUTH_SOURCE", "127.0.0.2")))

    @staticmethod
    def base() -> str:
        base = os.environ.get("ERASURE_ST_BASE_URL")
        if not base:
            raise RuntimeError("ERASURE_ST_BASE_URL is not set")
        _loopback(requests.utils.urlparse(base).hostname or "")
        return base.rstrip("/")

    def current(self) -> str:
        with self.lock:
            if self.token is None:
                self.token = self._new_session()
            return self.token

    def forget(self, token: str) -> None:
        with self.lock:
            if self.token == token:
                self.token = None

    def _new_session(self) -> str:
        self.accounts += 1
        vsee_id = f"st-{secrets.token_hex(6)}"
        # Random, 27 characters: within 8-128 and never one of the common passwords refused.
        password = f"St-{secrets.token_urlsafe(18)}"
        signup = self.http.post(
            f"{self.base()}/v1/accounts",
            json={
                "vsee_id": vsee_id,
                "email": f"{vsee_id}@example.com",
                "password": password,
                "first_name": "Schema",
                "last_name": "Thesis",
            },
            timeout=10,
        )
        if signup.status_code != 201:
            raise RuntimeError(f"sign-up answered {signup.status_code}: {signup.text[:300]}")
        login = self.http.post(
            f"{self.base()}/v1/sessions", json={"vsee_id": vsee_id, "password": password}, timeout=10
        )
        if login.status_code == 429:
            raise RuntimeError(
                f"log-in refused with 429 (Retry-After {login.headers.get('retry-after')}): "
                "the provider's source address is rate-limited"
            )
        if login.status_code != 200:
            raise RuntimeError(f"log-in answered {login.status_code}: {login.text[:300]}")
        token = login.cookies.get(COOKIE)
        if not token:
            raise RuntimeError(f"log-in set no {COOKIE} cookie: {login.headers.get('set-cookie')!r}")
        _remember(token)
        return token


class _StaffSource(_SessionSource):
    """The live staff session of the agent ./run created; logged in again when it is gone."""

    def _new_session(self) -> str:
        self.accounts += 1
        login = self.http.post(
            f"{self.base()}/v1/staff/sessions",
            json={
                "email": os.environ["ERASURE_ST_STAFF_EMAIL"],
                "password": os.environ["ERASURE_ST_STAFF_PASSWORD"],
            },
            timeout=10,
        )
        if login.status_code != 200:
            raise RuntimeError(f"staff log-in answered {login.status_code}: {login.text[:300]}")
        token = login.cookies.get(STAFF_COOKIE)
        if not token:
            raise RuntimeError(f"staff log-in set no {STAFF_COOKIE} cookie")
        _remember(token)
        return token


SESSIONS: _SessionSource | None = None
AUTH_COOKIE = COOKIE

if os.environ.get("ERASURE_ST_AUTH") in ("1", "staff"):
    if os.environ.get("ERASURE_ST_AUTH") == "staff":
        SESSIONS = _StaffSource()
        AUTH_COOKIE = STAFF_COOKIE
    else:
        SESSIONS = _SessionSource()

    # refresh_interval=None: no time-based caching by schemathesis, and none of its re-login
    # and replay on every 401 (here 401 also means a wrong password in the body). The session
    # is kept by _SessionSource and dropped by after_call exactly when the server says it is gone.
    @schemathesis.auth(refresh_interval=None)
    class ErasureSession:
        def get(self, case: Any, context: Any) -> str:
            assert SESSIONS is not None
            return SESSIONS.current()

        def set(self, case: Any, data: str, context: Any) -> None:
            if case.cookies is None:
                case.cookies = {}
            # A session a link passed on (from POST /v1/sessions) is the one under test: keep it.
            if _is_issued(case.cookies.get(AUTH_COOKIE)):
                return
            case.cookies[AUTH_COOKIE] = data


# --- 3a. stateful: sign-ups the server accepts -------------------------------------------------
# The SignUp schema does not say which characters a VSee ID or a name may hold, so most
# generated sign-ups are refused (the other phases report that) and a scenario would rarely get
# past its first step. In the stateful phase only, 4 of 5 positive sign-up cases get a valid,
# unique vsee_id, email and password; names and extra properties stay as generated, negative
# cases are left alone.
STATEFUL_VALID_SIGNUP_PERCENT = int(os.environ.get("ERASURE_ST_STATEFUL_VALID_SIGNUP_PERCENT", "80"))


def _valid_signup(pair: tuple[Any, int]) -> Any:
    case, roll = pair
    meta = case.meta
    if (
        _phase(case) != "stateful"
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
    if not _is_operation(context.operation, SIGN_UP):
        return strategy
    return hst.tuples(strategy, hst.integers(min_value=0, max_value=99)).map(_valid_signup)


# --- 3b. stateful: scenarios may start with a sign-up -------------------------------------------
# schemathesis 4.32's dependency analysis reads `vsee_id` in the SignUp body as a foreign key to
# a "Vsee" resource that no operation returns, and so demotes POST /v1/accounts to a "fallback"
# entry point, never used while other entry points exist (GET /v1/me, POST /v1/me/deletion):
# no scenario would start with a sign-up and the sign-up -> log-in link would never be followed.
_original_is_root = st_stateful.is_likely_root_transition


def _is_likely_root_transition(operation: Any, node: Any, produced_anywhere: set[str]) -> bool:
    if _is_operation(operation, SIGN_UP):
        return True
    return _original_is_root(operation, node, produced_anywhere)


st_stateful.is_likely_root_transition = _is_likely_root_transition


# --- 3c. stateful: every request from its own loopback client ------------------------------------
# The server refuses log-ins from a client address that has failed too many (even with the
# right password), and the examples/coverage/fuzzing phases fail hundreds from 127.0.0.1 within
# seconds: their 429s are documented answers and the checks validate them. A stateful scenario
# models users who are not that client, so each of its requests goes out on a fresh connection
# from a random address in 127.0.0.0/8. The per-VSee-ID limit still applies in full.
STATEFUL_RANDOM_SOURCE = os.environ.get("ERASURE_ST_STATEFUL_RANDOM_SOURCE", "1") == "1"
_THREAD = threading.local()


def _random_loopback() -> str:
    # Never 127.0.0.x: 127.0.0.1 is the other phases', 127.0.0.2 the auth provider's.
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class _StatefulSourceAdapter(HTTPAdapter):
    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if STATEFUL_RANDOM_SOURCE and getattr(_THREAD, "phase", None) == "stateful":
            one_off = _SourceAdapter(_random_loopback())
            try:
                response = one_off.send(request, *args, **kwargs)
                _ = response.content  # read it before its connection goes with the pool
                return response
            finally:
                one_off.close()
        return super().send(request, *args, **kwargs)


_original_make_session = st_engine_context.make_session


def _make_session(*args: Any, **kwargs: Any) -> Any:
    session = _original_make_session(*args, **kwargs)
    session.mount("http://", _StatefulSourceAdapter())
    return session


st_engine_context.make_session = _make_session


# --- 4. every request --------------------------------------------------------------------------


def _issued_cookie(response: Any) -> str | None:
    values = response.headers.get("set-cookie") or []
    if isinstance(values, str):
        values = [values]
    for value in values:
        for name in (COOKIE, STAFF_COOKIE):
            if value.startswith(f"{name}="):
                token = value[len(name) + 1 :].split(";", 1)[0]
                if token:
                    return token
    return None


INBOUND = ("post", "/v1/inbound/email")
INBOUND_SECRET = os.environ.get("ERASURE_ST_INBOUND_SECRET", "")


def _sign_inbound(case: Any) -> None:
    """Signs three in four bodies posted to the mail webhook with the run's secret, as a mail
    provider would, so the message parser behind the signature is fuzzed too; the fourth keeps
    whatever header was generated (almost always refused with 401)."""
    if not INBOUND_SECRET or not _is_operation(case.operation, INBOUND) or random.random() < 0.25:
        return
    body = case.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, (bytes, bytearray)):
        return
    digest = hmac.new(INBOUND_SECRET.encode(), bytes(body), hashlib.sha256).hexdigest()
    case.headers = dict(case.headers or {})
    case.headers["X-Erasure-Signature"] = f"sha256={digest}"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    _THREAD.phase = _phase(case)
    _sign_inbound(case)
    # A real session cookie (issued by the server in this run) is explicit auth, not a generated one.
    cookies = case.cookies or {}
    if _is_issued(cookies.get(COOKIE)) or _is_issued(cookies.get(STAFF_COOKIE)):
        case._has_explicit_auth = True


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    token = _issued_cookie(response)
    if token:
        _remember(token)
    if SESSIONS is None:
        return
    sent = (case.cookies or {}).get(AUTH_COOKIE)
    if not isinstance(sent, str) or not sent:
        return
    operation = (case.operation.method.lower(), case.operation.path)
    gone = (
        (operation == ("post", "/v1/me/deletion") and response.status_code == 202)
        or (operation == ("delete", "/v1/sessions/current") and response.status_code == 204)
        or (operation == ("delete", "/v1/staff/sessions/current") and response.status_code == 204)
    )
    if not gone and response.status_code == 401:
        try:
            gone = response.json().get("code") == "unauthenticated"
        except Exception:
            gone = False
    if gone:
        SESSIONS.forget(sent)
