"""load_backend: specs by prefix, imported lazily, with clear errors; run_sync from any context."""

import asyncio
import subprocess
import sys
import textwrap

import pytest

from rationalrewards.backends import BACKENDS, Backend, load_backend, run_sync
from rationalrewards.backends.scripted import ScriptedBackend


def test_backend_instance_is_returned_as_is():
    b = ScriptedBackend(lambda conv, i: "x")
    assert load_backend(b) is b


@pytest.mark.parametrize("spec", ["", "   ", None, 3])
def test_empty_or_non_string_spec(spec):
    with pytest.raises(ValueError, match="non-empty string"):
        load_backend(spec)


@pytest.mark.parametrize("spec", ["nope:x", "nope", "/some/checkpoint", "OpenAI:http://h/v1"])
def test_unknown_prefix_lists_known_backends(spec):
    with pytest.raises(ValueError) as info:
        load_backend(spec)
    message = str(info.value)
    assert "unknown backend" in message and repr(spec) in message
    for name in BACKENDS:
        assert name in message


def test_registry_holds_the_documented_backends():
    assert {"openai", "transformers", "synthetic-teacher", "embedded"} <= set(BACKENDS)
    for target in BACKENDS.values():
        module, _, attr = target.partition(":")
        assert module.startswith("rationalrewards.") and attr


_FACTORY_MODULE = """
from rationalrewards.backends.scripted import ScriptedBackend

def from_spec(rest, **kwargs):
    backend = ScriptedBackend(lambda conv, i: f"{rest}|{i}", name=f"echo:{rest}")
    backend.kwargs = kwargs
    return backend
"""


@pytest.fixture
def echo_prefix(tmp_path, monkeypatch):
    """A real factory module on sys.path, registered under the prefix ``echo``."""
    name = "rr_test_echo_backend_factory"
    (tmp_path / f"{name}.py").write_text(_FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "echo", f"{name}:from_spec")
    yield "echo"
    sys.modules.pop(name, None)


def test_spec_rest_and_kwargs_reach_the_factory(echo_prefix):
    b = load_backend("echo:C:/models/ckpt,with:colons", temperature_cap=0.5)
    assert isinstance(b, Backend)
    assert b.name == "echo:C:/models/ckpt,with:colons"  # split on the first colon only
    assert b.kwargs == {"temperature_cap": 0.5}
    from rationalrewards.conversation import Conversation

    out = b.generate([Conversation().add("user", "hi")])
    assert out[0].texts == ["C:/models/ckpt,with:colons|0"]


def test_spec_without_rest_and_with_spaces(echo_prefix):
    assert load_backend("echo").name == "echo:"
    assert load_backend("  echo:abc  ").name == "echo:abc"


def test_importing_the_registry_imports_no_backend():
    code = textwrap.dedent(
        """
        import sys
        import rationalrewards.backends
        heavy = ("torch", "transformers", "openai", "httpx", "fastapi")
        loaded = [m for m in sys.modules if m.split(".")[0] in heavy]
        ours = [m for m in sys.modules if m.startswith("rationalrewards.backends.")]
        loaded += [m for m in ours if m != "rationalrewards.backends.base"]
        print(",".join(loaded))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- run_sync ------------------------------------------------------------------


async def _add(a, b):
    await asyncio.sleep(0)
    return a + b


async def _boom():
    await asyncio.sleep(0)
    raise KeyError("boom")


def test_run_sync_from_plain_code():
    assert run_sync(_add(2, 3)) == 5


def test_run_sync_propagates_exceptions():
    with pytest.raises(KeyError, match="boom"):
        run_sync(_boom())


def test_run_sync_inside_a_running_loop():
    async def main():
        loop = asyncio.get_running_loop()
        value = run_sync(_add(4, 5))  # a sync call from async code: must not deadlock or raise
        assert asyncio.get_running_loop() is loop
        with pytest.raises(KeyError, match="boom"):
            run_sync(_boom())
        return value

    assert asyncio.run(main()) == 9


def test_run_sync_propagates_base_exceptions_from_inside_a_loop():
    class Stop(BaseException):
        pass

    async def stop():
        raise Stop()

    async def main():
        run_sync(stop())

    with pytest.raises(Stop):
        asyncio.run(main())


def test_generate_is_usable_inside_a_running_loop():
    from rationalrewards.conversation import Conversation

    b = ScriptedBackend(lambda conv, i: conv.messages[0].text.upper())

    async def main():
        return b.generate([Conversation().add("user", "abc")])

    assert asyncio.run(main())[0].texts == ["ABC"]
