"""Benchmark the Open Badges API (obapi/): what one connected app costs the server.

    python -m bench.obapi      # writes its own section of bench/RESULTS.md (replacing an earlier one)

A temporary SQLite database; one learner with 20 course certificates, already signed (each credential is signed
once, when first served). Everything runs in one process through Flask's test client (routing, rate limit, JSON,
database, commit), interleaved round by round with the baseline the rest is compared to: the discovery document
(no database, no token). Timed: registration, the token request for a code (PKCE, hashes, one insert), a refresh
(rotation: one conditional UPDATE and an insert), getCredentials with 20 credentials on the page, getProfile.
Wall time of the request and CPU time of this process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
ROUNDS = 21
HEADING = "## Open Badges API (bench/obapi.py)"
REDIRECT = "https://backpack.example/cb"


def main() -> None:
    from flask_migrate import upgrade

    from core import create_app
    from core.extensions import db
    from credentials import openbadges
    from credentials.identity import issuer
    from obapi import server
    from tests.conftest import TEST_SIGNING_KEYS
    from tests.factories import PASSWORD, load_test_framework, make_certificate, make_course, make_user

    folder = Path(tempfile.mkdtemp(prefix="awa-obapi-bench-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "o" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'obapi.db'}",
            "SIGNING_KEYS": TEST_SIGNING_KEYS,
            "MAIL_OUTBOX_DIR": str(folder / "outbox"),
            "PRERENDER_PDF": False,
            # one client sends every request
            "RATELIMIT_OB_REGISTER": "100000 per minute",
            "RATELIMIT_OB_TOKEN": "100000 per minute",
            "RATELIMIT_OB_API": "100000 per minute",
            "RATELIMIT_LOGIN": "100000 per minute",
        }
    )
    scope = f"{server.CREDENTIAL_READ} {server.PROFILE_READ}"
    with app.app_context():
        upgrade()
        load_test_framework()
        user = make_user(email="pat@example.org", name="Pat Learner")
        for i in range(20):
            certificate = make_certificate(user, make_course(f"course-{i}", title=f"Course {i}"))
            openbadges.signed_credential(certificate, issuer(), now=certificate.issued_at)
        db.session.commit()
    client = app.test_client()
    registration = {"client_name": "Bench", "client_uri": "https://backpack.example/", "redirect_uris": [REDIRECT]}
    registration["scope"] = scope

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"csrf_token": token, "email": "pat@example.org", "password": PASSWORD})
    app_info = client.post("/ims/ob/v3p0/register", json=registration).json
    auth = {
        "Authorization": "Basic "
        + base64.b64encode(f"{app_info['client_id']}:{app_info['client_secret']}".encode()).decode()
    }

    def code() -> tuple[str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": app_info["client_id"], "redirect_uri": REDIRECT}
        query |= {"scope": scope, "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
        url = "/ims/ob/v3p0/authorize?" + urlencode(query)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)
        answer = client.post(url, data={"csrf_token": csrf, "decision": "allow"})
        return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0], verifier

    tokens = {}

    def timed(fn) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    def discovery():
        assert client.get("/ims/ob/v3p0/discovery").status_code == 200

    def register():
        assert client.post("/ims/ob/v3p0/register", json=registration).status_code == 201

    def exchange(code_and_verifier):
        code_value, verifier = code_and_verifier
        data = {"grant_type": "authorization_code", "code": code_value, "redirect_uri": REDIRECT}
        answer = client.post("/ims/ob/v3p0/token", data={**data, "code_verifier": verifier}, headers=auth)
        assert answer.status_code == 200
        tokens.update(answer.json)

    def refresh():
        data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        answer = client.post("/ims/ob/v3p0/token", data=data, headers=auth)
        assert answer.status_code == 200
        tokens.update(answer.json)

    def credentials():
        answer = client.get("/ims/ob/v3p0/credentials?limit=20", headers=bearer())
        assert answer.status_code == 200 and len(answer.json["credential"]) == 20

    def profile():
        assert client.get("/ims/ob/v3p0/profile", headers=bearer()).status_code == 200

    def bearer() -> dict:
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    names = ["discovery (baseline)", "register", "token (code + PKCE)", "refresh (rotation)"]
    names += ["getCredentials, 20 on the page", "getProfile"]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    with app.app_context():
        for _ in range(ROUNDS):
            pending = code()  # the consent page and the Allow post are the learner's, not timed here
            for name, fn in zip(
                names, [discovery, register, lambda p=pending: exchange(p), refresh, credentials, profile], strict=True
            ):
                samples[name].append(timed(fn))
    base_wall = statistics.median(w for w, _ in samples[names[0]])
    lines = [
        "",
        HEADING,
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f}; SQLite; medians of {ROUNDS} interleaved rounds, in process (test client).",
        "",
        "| request | wall | CPU | wall ÷ discovery |",
        "|---|---|---|---|",
    ]
    for name in names:
        wall = statistics.median(w for w, _ in samples[name])
        cpu = statistics.median(c for _, c in samples[name])
        lines.append(f"| {name} | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms | {wall / base_wall:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    previous = re.sub(rf"\n{re.escape(HEADING)}\n.*?(?=\n## |\Z)", "", previous, flags=re.S)
    RESULTS.write_text(previous.rstrip("\n") + "\n" + text)


if __name__ == "__main__":
    main()
