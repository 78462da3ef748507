"""Google credentials from fit-sync's secrets, and the authorized ``requests`` session.

Two kinds of credential, looked up through ``context.secret`` (environment, systemd credential,
plugins, keyring; see ``fit keys``):

- ``service_account``: the JSON key file of a service account (``fit keys set SOURCE
  service_account --from-file key.json``). The form and the spreadsheet must be shared with the
  account's email.
- ``oauth``: an authorized-user JSON (``client_id``, ``client_secret``, ``refresh_token``), as
  written by ``gcloud auth application-default login --scopes=…`` or an OAuth consent flow. The
  consent must include the three :data:`SCOPES`.

The token endpoint is the ``token_uri`` setting (Google's by default), so a proxy or a loopback
fake can mint tokens. Tokens and keys are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from fit_core.errors import ConfigError
from fit_core.http import USER_AGENT
from fit_core.secrets import env_name

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

# google-auth's transport and crypto modules take a third of a second to import: they are
# imported where credentials are built, so `fit` stays quick when no Google source is configured

SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/forms.body.readonly",
    "https://www.googleapis.com/auth/forms.responses.readonly",
    "https://www.googleapis.com/auth/spreadsheets",
)


@dataclass(frozen=True)
class Identity:
    """Credentials and who they act as (for messages: an email, never a secret)."""

    credentials: Credentials
    account: str
    kind: str  # service_account | oauth | token


#: what to install when google-auth is missing (it is an optional extra of fit-sync)
INSTALL_HINT = "pip install 'fit-sync[google]' (google-auth) into fit-sync's environment"


def require_google(source: str) -> None:
    """Raise a ConfigError naming the extra to install when google-auth is not installed."""
    try:
        import google.auth
        import google.oauth2  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"source {source!r} uses the google_forms adapter, which needs google-auth "
            "(not installed)",
            hint=INSTALL_HINT,
        ) from None


def load_identity(secret: Callable[[str], str], source: str, mode: str, token_uri: str) -> Identity:
    """Credentials for ``source``: ``mode`` is auto (service_account, else oauth) or one of them."""
    require_google(source)
    first: ConfigError | None = None
    if mode in ("auto", "service_account"):
        try:
            text = secret("service_account")
        except ConfigError as exc:
            if mode == "service_account":
                raise
            first = exc
        else:
            return service_account_identity(text, source, token_uri)
    try:
        text = secret("oauth")
    except ConfigError as exc:
        if mode == "oauth":
            raise
        raise ConfigError(
            f"no Google credentials for source {source!r} (service_account: "
            f"{first.message if first else '?'}; oauth: {exc.message})",
            hint=f"store the service account's key: `fit keys set {source} service_account "
            f"--from-file key.json` (or an authorized-user OAuth JSON as `oauth`), or set "
            f"{env_name(source, 'service_account')}",
        ) from None
    return oauth_identity(text, source, token_uri)


def service_account_identity(text: str, source: str, token_uri: str) -> Identity:
    """Service-account credentials from the key file's JSON text."""
    info = _json(text, source, "service_account")
    if info.get("type") == "authorized_user":
        raise ConfigError(
            f"the service_account secret of {source!r} holds an authorized-user (OAuth) JSON",
            hint=f"store it as `oauth` instead: `fit keys set {source} oauth --from-file FILE`",
        )
    info = {**info, "token_uri": token_uri}
    try:
        from google.oauth2 import service_account

        creds = service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"the service_account secret of {source!r} is not a usable service-account key",
            hint="download a JSON key (IAM & Admin → Service accounts → Keys → Add key → JSON) "
            f"and store it with `fit keys set {source} service_account --from-file key.json`",
        ) from None
    return Identity(creds, str(info.get("client_email", "the service account")), "service_account")


def oauth_identity(text: str, source: str, token_uri: str) -> Identity:
    """Authorized-user credentials (a refresh token) from their JSON text."""
    info = _json(text, source, "oauth")
    missing = [k for k in ("client_id", "client_secret", "refresh_token") if not info.get(k)]
    if missing:
        raise ConfigError(
            f"the oauth secret of {source!r} lacks {', '.join(missing)}",
            hint="store an authorized-user JSON (client_id, client_secret, refresh_token)",
        )
    from google.oauth2 import credentials as user_credentials

    # no scopes on the refresh request: the access token then carries every scope the user
    # consented to, and a call that needs one more is refused with a 403 naming the scope
    # (asking for more than was granted would only make the token endpoint say invalid_scope)
    creds = user_credentials.Credentials(
        token=None,
        refresh_token=info["refresh_token"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        token_uri=token_uri,
    )
    account = str(info.get("account") or "the Google account that granted access")
    return Identity(creds, account, "oauth")


def token_identity(token: str, account: str = "the account of the access token") -> Identity:
    """Credentials holding a ready access token (tests, or a token minted elsewhere)."""
    from google.oauth2 import credentials as user_credentials

    return Identity(user_credentials.Credentials(token=token), account, "token")


def authorized_session(identity: Identity) -> requests.Session:
    """An ``AuthorizedSession`` (a ``requests.Session``) that adds and refreshes the token."""
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(identity.credentials)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _json(text: str, source: str, key: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"the {key} secret of {source!r} is not a JSON object",
            hint=f"store the JSON file itself: `fit keys set {source} {key} --from-file FILE`",
        )
    return value
