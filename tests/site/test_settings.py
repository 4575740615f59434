"""Settings from the environment: embedded defaults, a strict production profile."""

import os
import subprocess
import sys

from tests.factories import PRODUCTION_ENV, ROOT


def manage(*args, env):
    clean = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "EMAIL_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path)}
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_deploy_check_is_clean(tmp_path):
    env = {**PRODUCTION_ENV, "PIPAL_VAR_DIR": str(tmp_path)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_default_needs_no_environment(tmp_path):
    result = manage(
        "check", env={"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr


def test_bad_environment_values_are_named(tmp_path):
    env = {"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path), "DEBUG": "maybe"}
    result = manage("check", env=env)
    assert result.returncode != 0 and "DEBUG='maybe'" in result.stderr
    env = {"DJANGO_SETTINGS_MODULE": "pipal_site.settings.local", "PIPAL_VAR_DIR": str(tmp_path)}
    result = manage("check", env={**env, "DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode != 0 and "not supported" in result.stderr
