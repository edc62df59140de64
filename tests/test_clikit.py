import pytest
import typer

from rationalrewards.clikit import fail, key_values, one_line


def test_one_line_keeps_the_first_line_or_names_the_type():
    assert one_line(ValueError("bad input\nTraceback details")) == "bad input"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("  padded  ")) == "padded"


def test_key_values_strips_and_rejects_items_without_a_key(capsys):
    assert key_values(["a=1", " b = x y ", "c="], "--opt") == {"a": "1", "b": "x y", "c": ""}
    for bad in ("novalue", "=1", " =1"):
        with pytest.raises(typer.Exit) as exc:
            key_values([bad], "--opt")
        assert exc.value.exit_code == 1
        err = capsys.readouterr().err
        assert err.startswith("error: --opt takes KEY=VALUE") and repr(bad) in err


def test_fail_prints_markup_literally(capsys):
    with pytest.raises(typer.Exit):
        fail("path runs/[bold]x[/bold] " + "long " * 40)
    err = capsys.readouterr().err
    assert "runs/[bold]x[/bold]" in err and err.count("\n") == 1  # not read as markup, not wrapped
