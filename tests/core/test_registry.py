"""core.registry: one registry type, filled by an explicit loader run once."""

import pytest

from core.registry import Registry, UnknownName


def test_the_loader_runs_once_on_first_read():
    calls = []

    def loader(registry):
        calls.append(1)
        registry.add("gaussian_blur", "blur")
        registry.add("jpeg", "jpeg")

    registry = Registry("distortion family", loader=loader)
    assert calls == []  # declaring a registry loads nothing
    assert registry.names() == ["gaussian_blur", "jpeg"] and registry["jpeg"] == "jpeg"
    assert "jpeg" in registry and len(registry) == 2 and list(registry) == ["gaussian_blur", "jpeg"]
    registry.load()
    assert calls == [1]


def test_an_unknown_name_lists_close_matches_and_the_known_names():
    registry = Registry("metric")
    registry.add("lpips", 1)
    registry.add("psnr", 2)
    with pytest.raises(UnknownName) as error:
        registry.get("lpip")
    assert str(error.value) == "unknown metric 'lpip'; did you mean lpips? (known: lpips, psnr)"
    assert isinstance(error.value, KeyError)  # callers that catch KeyError keep working


def test_names_are_unique_and_clean():
    registry = Registry("SR checkpoint")
    registry.add("esrgan_x4", 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("esrgan_x4", 2)
    for bad in ("", " esrgan_x4"):
        with pytest.raises(ValueError, match="empty or has surrounding spaces"):
            registry.add(bad, 3)


def test_a_failing_loader_leaves_the_registry_empty_and_runs_again():
    attempts = []

    def loader(registry):
        attempts.append(1)
        registry.add("a", 1)
        if len(attempts) == 1:
            raise RuntimeError("a declaration is broken")

    registry = Registry("thing", loader=loader)
    with pytest.raises(RuntimeError):
        registry.names()
    assert registry.names() == ["a"] and len(attempts) == 2  # nothing half-loaded stayed behind
