from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_signs_up_and_logs_in(client):
    r = client.post(
        "/accounts/signup/",
        {
            "username": "alice",
            "email": "alice@lab.org",
            "password1": "s3cret-microscope",
            "password2": "s3cret-microscope",
        },
    )
    assert r.status_code == 302
    assert get_user_model().objects.filter(username="alice").exists()
    assert client.get("/").status_code == 200


def test_it_refuses_duplicate_email(client, user):
    r = client.post(
        "/accounts/signup/",
        {
            "username": "other",
            "email": user.email.upper(),
            "password1": "s3cret-microscope",
            "password2": "s3cret-microscope",
        },
    )
    assert r.status_code == 200
    assert "already exists" in r.content.decode()


def test_it_sends_anonymous_users_to_login(client):
    r = client.get("/")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")
    page = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page


def test_it_logs_in_and_out(client, user):
    r = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert r.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_it_changes_the_password(client, user):
    client.force_login(user)
    r = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": "n3w-spectrometer", "new_password2": "n3w-spectrometer"},
    )
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.check_password("n3w-spectrometer")


def test_it_creates_an_api_token_from_the_profile(client, user):
    client.force_login(user)
    assert "api-token" not in client.get("/accounts/profile/").content.decode()
    client.post("/accounts/token/")
    token = Token.objects.get(user=user)
    assert token.key in client.get("/accounts/profile/").content.decode()
    client.post("/accounts/token/")
    assert Token.objects.get(user=user).key != token.key
