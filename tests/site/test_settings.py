"""Settings from the environment: embedded defaults, a strict production profile."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "pipal_site.settings.production",
    "SECRET_KEY": "k7#Qz1v!9sLm2@Xe4$Rt6^Yu8&Io0*Pa3(Sd5)Fg7-Hj9_Kl1+Zx",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/pipal",
    "ALLOWED_HOSTS": "study.example.org",
    "EMAIL_URL": "submission://mailer:secret@mail.example.org:587",
}


def manage(*args, env):
    clean = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "EMAIL_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = {**PRODUCTION, "PIPAL_VAR_DIR": str(tmp_path)}
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_deploy_check_is_clean(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "PIPAL_VAR_DIR": str(tmp_path)})
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
