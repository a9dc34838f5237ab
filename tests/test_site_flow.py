"""The site flow: widgets with RS256 JWTs, then statistics tokens."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import new_account, token_flow
from hindsight.db import connect
from hindsight.signing import AUDIENCE, ISSUER, rotate


def _widgets(client, account, origin=None, referer=None):
    headers = {}
    if origin:
        headers["Origin"] = origin
    if referer:
        headers["Referer"] = referer
    return client.simulate_get(f"/site/account/{account['account_id']}/widgets", headers=headers)


def _stats(client, account, jwt_token, origin):
    return client.simulate_get(f"/site/widget/{account['widget_id']}/account_statistics",
                               headers={"Authorization": f"Bearer {jwt_token}", "Origin": origin})


def test_widgets_are_signed_rs256_with_a_published_key(client, db_url):
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    resp = _widgets(client, account, origin)
    assert resp.status_code == 200, resp.json
    assert resp.headers["access-control-allow-origin"] == origin
    (widget,) = resp.json["widgets"]
    assert widget["widget_id"] == account["widget_id"] and widget["type"] == "tracker"
    header = pyjwt.get_unverified_header(widget["token"])
    assert header["alg"] == "RS256" and header["kid"]
    jwks = client.simulate_get("/.well-known/jwks.json").json
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert "d" not in jwk  # public part only
    public = pyjwt.PyJWK(jwk).key
    claims = pyjwt.decode(widget["token"], public, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["account_id"] == account["account_id"]
    assert claims["widget_id"] == account["widget_id"]
    assert claims["domain"] == account["domain"]
    lifetime = claims["exp"] - claims["iat"]
    assert lifetime == 7 * 24 * 3600


def test_referer_is_used_when_there_is_no_origin_and_subdomains_are_covered(client, db_url):
    account = new_account(db_url)
    resp = _widgets(client, account, referer=f"https://www.{account['domain']}/pricing?x=1")
    assert resp.status_code == 200
    assert resp.json["domain"] == account["domain"]


def test_unregistered_host_gets_403(client, db_url):
    account = new_account(db_url)
    resp = _widgets(client, account, origin="https://evil.example")
    assert resp.status_code == 403
    assert "evil.example" in resp.json["description"]
    assert "access-control-allow-origin" not in resp.headers
    # A look-alike suffix is not a subdomain.
    assert _widgets(client, account, origin=f"https://x{account['domain']}").status_code == 403
    assert _widgets(client, account).status_code == 403  # no Origin, no Referer


def test_unknown_account_is_404(client):
    resp = client.simulate_get(f"/site/account/{uuid.uuid4()}/widgets",
                               headers={"Origin": "https://a.example"})
    assert resp.status_code == 404
    assert client.simulate_get("/site/account/not-a-uuid/widgets").status_code == 404


def test_statistics_token_is_created_once_and_flag_enabled(client, db_url):
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    first = token_flow(client, account, origin)
    second = token_flow(client, account, origin)
    assert first == second  # the live token is returned, not a new one
    with connect(db_url) as conn:
        flag = conn.execute("SELECT enabled FROM statistics_flags WHERE account_id = %s AND host = %s",
                            (account["account_id"], account["domain"])).fetchone()
        tokens = conn.execute("SELECT count(*) AS n FROM statistics_tokens WHERE account_id = %s",
                              (account["account_id"],)).fetchone()
    assert flag["enabled"] is True
    assert tokens["n"] == 1


def test_token_near_expiry_is_renewed(client, db_url):
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    first = token_flow(client, account, origin)
    with connect(db_url) as conn:
        conn.execute("UPDATE statistics_tokens SET expires_at = now() + interval '1 minute' WHERE token = %s",
                     (first,))
        conn.commit()
    renewed = token_flow(client, account, origin)
    assert renewed != first


def _forge(claims: dict, key, kid: str, alg: str = "RS256") -> str:
    return pyjwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _claims(account, **overrides):
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + timedelta(days=7),
              "widget_id": account["widget_id"], "account_id": account["account_id"],
              "domain": account["domain"]}
    claims.update(overrides)
    return claims


def _real_jwt(client, account):
    return _widgets(client, account, f"https://{account['domain']}").json["widgets"][0]["token"]


def test_expired_jwt_is_refused(client, db_url, app):
    account = new_account(db_url)
    kid = pyjwt.get_unverified_header(_real_jwt(client, account))["kid"]
    with connect(db_url) as conn:
        pem = conn.execute("SELECT private_key_pem FROM jwt_signing_keys WHERE kid = %s", (kid,)).fetchone()
    key = serialization.load_pem_private_key(pem["private_key_pem"].encode(), None)
    past = datetime.now(UTC) - timedelta(days=8)
    token = _forge(_claims(account, iat=past, exp=past + timedelta(days=7)), key, kid)
    resp = _stats(client, account, token, f"https://{account['domain']}")
    assert resp.status_code == 401
    assert "expired" in resp.json["description"]
    # The same key with valid times works, so it was the expiry that failed.
    assert _stats(client, account, _forge(_claims(account), key, kid),
                  f"https://{account['domain']}").status_code == 200


def test_jwt_signed_with_another_key_is_refused(client, db_url):
    account = new_account(db_url)
    kid = pyjwt.get_unverified_header(_real_jwt(client, account))["kid"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resp = _stats(client, account, _forge(_claims(account), stranger, kid), f"https://{account['domain']}")
    assert resp.status_code == 401
    resp = _stats(client, account, _forge(_claims(account), stranger, "unknown-kid"),
                  f"https://{account['domain']}")
    assert resp.status_code == 401


def test_alg_confusion_hs256_with_the_public_key_is_refused(client, db_url):
    account = new_account(db_url)
    kid = pyjwt.get_unverified_header(_real_jwt(client, account))["kid"]
    jwk = next(k for k in client.simulate_get("/.well-known/jwks.json").json["keys"] if k["kid"] == kid)
    public_pem = pyjwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    now = int(datetime.now(UTC).timestamp())
    body = b64(json.dumps({**_claims(account), "iat": now, "exp": now + 3600}).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    resp = _stats(client, account, f"{header}.{body}.{signature}", f"https://{account['domain']}")
    assert resp.status_code == 401
    none_token = f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}."
    assert _stats(client, account, none_token, f"https://{account['domain']}").status_code == 401


def test_jwt_used_from_another_host_or_widget_is_refused(client, db_url):
    account = new_account(db_url)
    other = new_account(db_url)
    token = _real_jwt(client, account)
    assert _stats(client, account, token, "https://evil.example").status_code == 403
    # Account A's JWT presented for account B's widget id.
    resp = client.simulate_get(f"/site/widget/{other['widget_id']}/account_statistics",
                               headers={"Authorization": f"Bearer {token}",
                                        "Origin": f"https://{account['domain']}"})
    assert resp.status_code == 403
    assert _stats(client, account, "garbage", f"https://{account['domain']}").status_code == 401
    missing = client.simulate_get(f"/site/widget/{account['widget_id']}/account_statistics")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"


def test_disabled_statistics_flag_refuses_tokens_and_writes(client, db_url):
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    token = token_flow(client, account, origin)
    with connect(db_url) as conn:
        conn.execute("UPDATE statistics_flags SET enabled = false WHERE account_id = %s",
                     (account["account_id"],))
        conn.commit()
    resp = _stats(client, account, _real_jwt(client, account), origin)
    assert resp.status_code == 403 and "disabled" in resp.json["description"]
    write = client.simulate_post("/api/v1/sessions", json={},
                                 headers={"Authorization": f"Bearer {token}", "Origin": origin})
    assert write.status_code == 403 and "disabled" in write.json["description"]


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(client, db_url, app):
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    old = _real_jwt(client, account)
    with connect(db_url) as conn:
        new_kid = rotate(conn, timedelta(days=7))
    # Every worker reloads keys at most a minute later; force it here.
    from hindsight.resources.site import Widgets

    widgets = next(r for r in _resources(app) if isinstance(r, Widgets))
    widgets._s.keys._loaded_at = -1e18
    fresh = _real_jwt(client, account)
    assert pyjwt.get_unverified_header(fresh)["kid"] == new_kid
    assert _stats(client, account, old, origin).status_code == 200
    kids = {k["kid"] for k in client.simulate_get("/.well-known/jwks.json").json["keys"]}
    assert {new_kid, pyjwt.get_unverified_header(old)["kid"]} <= kids


def _resources(app):
    found = []

    def walk(nodes):
        for node in nodes:
            if node.resource is not None:
                found.append(node.resource)
            walk(node.children)

    walk(app._router._roots)
    return found
