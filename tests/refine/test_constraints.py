from rationalrewards.refine.constraints import ConstraintCheck, extract_constraints, missing_constraints


def kinds(request: str) -> set[str]:
    return {str(c) for c in extract_constraints(request)}


def test_extracts_each_kind():
    found = kinds('A sign that says "OPEN" above three yellow ducks, no text elsewhere')
    assert {"quoted:OPEN", "count:3", "colour:yellow", "noun:duck", "noun:sign", "negation:text"} <= found


def test_a_faithful_rewrite_keeps_everything():
    original = "a red cube left of two blue spheres, no text"
    refined = "A large red cube placed to the left of 2 glossy blue spheres; the image contains no text at all."
    assert missing_constraints(original, refined) == []


def test_dropped_quoted_word_count_colour_and_negation_are_reported():
    original = 'a poster reading "SALE" with three green stars and no people'
    refined = 'a poster reading "SAEL" with green stars and people smiling'
    missing = missing_constraints(original, refined)
    assert "quoted:SALE" in missing
    assert "count:3" in missing
    assert "negation:people" in missing
    assert "colour:green" not in missing


def test_changed_colour_and_dropped_noun_are_reported():
    missing = missing_constraints("a red cube next to a dog", "a blue cube")
    assert "colour:red" in missing and "noun:dog" in missing


def test_quoted_text_is_case_sensitive_and_plural_nouns_match_singular():
    assert missing_constraints('the word "Open" on two cats', 'the word "OPEN" on 2 cat') == ["quoted:Open"]


def test_kinds_can_be_switched_off():
    check = ConstraintCheck(noun=False, colour=False)
    assert missing_constraints("a red cube next to a dog", "a blue cube", check) == []
