"""ScriptedBackend: a real backend whose model is a Python function."""

import asyncio

import pytest

from rationalrewards.backends import Completion, GenerationConfig
from rationalrewards.backends.scripted import ScriptedBackend
from rationalrewards.conversation import Conversation


def _conv(text: str) -> Conversation:
    return Conversation().add("user", text)


def _responder(conv: Conversation, i: int) -> str:
    text = conv.messages[-1].text
    if text.startswith("fail"):
        raise RuntimeError(f"cannot answer {text!r}")
    return f"{text}#{i}"


def test_one_completion_per_conversation_in_order():
    b = ScriptedBackend(_responder)
    out = b.generate([_conv("a"), _conv("b"), _conv("c")])
    assert [c.texts for c in out] == [["a#0"], ["b#0"], ["c#0"]]
    assert all(isinstance(c, Completion) and c.ok and c.error is None for c in out)


def test_n_samples():
    b = ScriptedBackend(_responder)
    out = b.generate([_conv("a"), _conv("b")], GenerationConfig(n=3))
    assert [c.texts for c in out] == [["a#0", "a#1", "a#2"], ["b#0", "b#1", "b#2"]]


def test_per_item_exception_is_that_items_error():
    b = ScriptedBackend(_responder)
    out = b.generate([_conv("a"), _conv("fail me"), _conv("c")], GenerationConfig(n=2))
    assert out[0].texts == ["a#0", "a#1"] and out[2].texts == ["c#0", "c#1"]
    assert not out[1].ok and out[1].texts == []
    assert out[1].error == "RuntimeError: cannot answer 'fail me'"


def test_failure_on_a_later_sample_fails_the_item():
    def flaky(conv, i):
        if i == 1:
            raise ValueError("second sample broke")
        return "fine"

    out = ScriptedBackend(flaky).generate([_conv("x")], GenerationConfig(n=2))
    assert out[0].texts == [] and "second sample broke" in out[0].error


def test_base_exceptions_are_not_swallowed():
    def interrupt(conv, i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ScriptedBackend(interrupt).generate([_conv("x")])


def test_records_calls_per_batch():
    b = ScriptedBackend(_responder)
    first = [_conv("a"), _conv("b")]
    b.generate(first)
    b.generate([_conv("c")])
    b.generate([])
    assert [len(batch) for batch in b.calls] == [2, 1, 0]
    assert b.calls[0][0] is first[0] and b.calls[0] is not first  # a copy of the list, same conversations


def test_responder_sees_the_conversation():
    seen = []

    def responder(conv, i):
        seen.append((conv.messages[0].role, conv.messages[0].text, i))
        return "ok"

    ScriptedBackend(responder).generate([Conversation().add("system", "sys").add("user", "u")])
    assert seen == [("system", "sys", 0)]


def test_async_and_name_and_delay():
    b = ScriptedBackend(_responder, name="script-1", delay_s=0.001)
    assert b.name == "script-1"

    async def main():
        return await asyncio.gather(b.agenerate([_conv("a")]), b.agenerate([_conv("b")], GenerationConfig(n=2)))

    first, second = asyncio.run(main())
    assert first[0].texts == ["a#0"] and second[0].texts == ["b#0", "b#1"]
    assert len(b.calls) == 2


def test_default_config_is_one_sample():
    out = asyncio.run(ScriptedBackend(_responder).agenerate([_conv("a")], None))
    assert out[0].texts == ["a#0"]


def test_close_is_harmless():
    b = ScriptedBackend(_responder)
    b.close()
    assert b.generate([_conv("a")])[0].ok
