"""User administration: list, search, role change, deactivation."""

from __future__ import annotations

from sqlalchemy import select

from accounts.models import Role, User
from core.extensions import db
from tests.factories import login, make_user, sign_in


def admin_client(client):
    admin = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    return admin


def test_list_and_search_users(client, ctx):
    admin_client(client)
    make_user(email="zoe@example.org", name="Zoe Zed")
    make_user(email="yan@example.org", name="Yan Admin", role=Role.ADMIN)
    page = client.get("/admin/users/").get_data(as_text=True)
    assert "zoe@example.org" in page and "yan@example.org" in page
    page = client.get("/admin/users/?q=ZOE").get_data(as_text=True)
    assert "zoe@example.org" in page and "yan@example.org" not in page
    page = client.get("/admin/users/?role=admin").get_data(as_text=True)
    assert "yan@example.org" in page and "zoe@example.org" not in page
    assert client.get("/admin/users/?role=wizard").status_code == 200


def test_change_role_takes_effect_in_live_session(client, other_client, ctx):
    admin_client(client)
    target = make_user(email="zoe@example.org")
    sign_in(other_client, "zoe@example.org")
    response = client.submit(f"/admin/users/{target.id}/role", {"role": "admin"}, page="/admin/users/")
    assert response.status_code == 303
    db.session.refresh(target)
    assert target.role is Role.ADMIN
    # the old session carried the old role, so it has to log in again
    assert other_client.get("/account").status_code == 302


def test_invalid_role_is_refused(client, ctx):
    admin_client(client)
    target = make_user(email="zoe@example.org")
    response = client.submit(
        f"/admin/users/{target.id}/role", {"role": "superuser"}, page="/admin/users/", follow_redirects=True
    )
    assert "Choose one of the listed roles" in response.get_data(as_text=True)
    db.session.refresh(target)
    assert target.role is Role.LEARNER


def test_admin_cannot_demote_or_deactivate_self(client, ctx):
    admin = admin_client(client)
    response = client.submit(
        f"/admin/users/{admin.id}/role", {"role": "learner"}, page="/admin/users/", follow_redirects=True
    )
    assert "cannot change your own role" in response.get_data(as_text=True)
    response = client.submit(f"/admin/users/{admin.id}/deactivate", page="/admin/users/", follow_redirects=True)
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role is Role.ADMIN and admin.active


def test_deactivation_kicks_out_a_live_session_and_reactivation_restores_login(client, other_client, ctx):
    admin_client(client)
    target = make_user(email="zoe@example.org")
    login(other_client, "zoe@example.org", remember="y")
    assert other_client.get("/account").status_code == 200
    response = client.submit(f"/admin/users/{target.id}/deactivate", page="/admin/users/")
    assert response.status_code == 303
    assert other_client.get("/account").status_code == 302
    assert login(other_client, "zoe@example.org").status_code == 422
    client.submit(f"/admin/users/{target.id}/reactivate", page="/admin/users/")
    db.session.refresh(target)
    assert target.active
    assert login(other_client, "zoe@example.org").status_code == 302


def test_unknown_user_is_404(client, ctx):
    admin_client(client)
    assert client.submit("/admin/users/999999/deactivate", page="/admin/users/").status_code == 404
    assert db.session.scalar(select(User).where(User.id == 999999)) is None
