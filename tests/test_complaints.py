"""Grouping flagged posts into recurring complaints (monitor.backlash.themes).

The planted themes are real Google Play reviews labelled by topic by people outside this project,
and the English and French problem reports are real reviews grouped by hand by the authors of
Mini-BAR (tests/fixtures/complaints/README.md); results are checked against those labels, never
against remembered ids.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import adjusted_rand_score

from monitor.backlash.themes import (
    QUOTE_CHARS,
    Complaint,
    _is_opinion,
    _languages,
    _read_terms,
    _words,
    group_complaints,
)
from monitor.quoting import quote

FIXTURE = Path(__file__).parent / "fixtures" / "complaints" / "three_themes.jsonl"
MINIBAR = Path(__file__).parent / "fixtures" / "complaints" / "minibar-garmin-problem-report.csv"
THEMES = ("MEMORY", "SECURITY", "BATTERY")
# Words that name each topic, written from the data set's own topic descriptions (README of
# the fixture folder), not read off the output.
THEME_WORDS = {
    "MEMORY": {"memory", "ram", "storage", "space", "out of memory"},
    "SECURITY": {"security", "secure", "password", "pin", "pattern", "lock", "lockscreen",
                 "unlock", "fingerprint", "root", "permission", "permissions"},
    "BATTERY": {"battery", "drain", "charge", "charged", "charging", "power"},
}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def found(rows) -> list[Complaint]:
    return group_complaints([(r["id"], r["text"]) for r in rows])


def majority(group: Complaint, theme_of: dict) -> tuple[str, float]:
    theme, n = Counter(theme_of[k] for k in group.keys).most_common(1)[0]
    return theme, n / group.count


def test_the_fixture_is_what_its_readme_says(rows):
    themes = Counter(r["theme"] for r in rows)
    assert themes == {"MEMORY": 25, "SECURITY": 25, "BATTERY": 25, "OFF-TOPIC": 8}
    assert len({r["id"] for r in rows}) == len(rows)


def test_the_three_planted_themes_are_the_three_largest_groups(rows, found):
    theme_of = {r["id"]: r["theme"] for r in rows}
    top = [majority(g, theme_of) for g in found[:3]]
    assert {theme for theme, _ in top} == set(THEMES)
    assert all(purity >= 0.8 for _, purity in top), top
    for group, (theme, purity) in zip(found[:3], top, strict=True):
        share = purity * group.count / sum(t == theme for t in theme_of.values())
        assert share >= 0.4, (theme, share)  # a real part of the theme, not a pure sliver


def test_phrases_name_their_theme(rows, found):
    theme_of = {r["id"]: r["theme"] for r in rows}
    for group in found[:3]:
        theme, _ = majority(group, theme_of)
        words = {w for phrase in group.phrases for w in [phrase, *phrase.split()]}
        assert words & THEME_WORDS[theme], (theme, group.phrases)
        assert 1 <= len(group.phrases) <= 4
        assert group.label == " / ".join(group.phrases[:2])


def test_quotes_are_the_most_typical_members(rows, found):
    text_of = {r["id"]: r["text"] for r in rows}
    for group in found:
        cut = [quote(text_of[k], QUOTE_CHARS) for k in group.keys]
        assert group.quotes[0] == cut[0]
        assert len(group.quotes) == min(2, len(set(cut)))
        assert set(group.quotes) <= set(cut)
        assert all(len(q) <= QUOTE_CHARS + 2 for q in group.quotes)


def test_groups_are_largest_first_and_disjoint(rows, found):
    assert 3 <= len(found) <= 8
    counts = [g.count for g in found]
    assert counts == sorted(counts, reverse=True)
    assert all(g.count == len(g.keys) >= 2 for g in found)
    keys = [k for g in found for k in g.keys]
    assert len(keys) == len(set(keys))
    assert set(keys) < {r["id"] for r in rows}  # some posts fit no group


def test_same_input_same_output(rows, found):
    again = group_complaints([(r["id"], r["text"]) for r in rows])
    assert again == found
    renamed = group_complaints([(f"post-{i}", r["text"]) for i, r in enumerate(rows)])
    index = {r["id"]: f"post-{i}" for i, r in enumerate(rows)}
    assert [g.keys for g in renamed] == [tuple(index[k] for k in g.keys) for g in found]
    assert [(g.phrases, g.quotes) for g in renamed] == [(g.phrases, g.quotes) for g in found]


def test_max_groups_keeps_the_largest_and_min_size_drops_small_ones(rows, found):
    items = [(r["id"], r["text"]) for r in rows]
    assert group_complaints(items, max_groups=2) == found[:2]
    big = group_complaints(items, min_size=10)
    assert big == [g for g in found if g.count >= 10]
    with pytest.raises(ValueError):
        group_complaints(items, max_groups=0)


def test_a_word_pair_names_a_complaint():
    items = [
        (1, "The new dark mode is unreadable"),
        (2, "dark mode contrast is terrible"),
        (3, "Please fix dark mode, the contrast is awful"),
        (4, "dark mode hurts my eyes"),
        (5, "Login fails since the update"),
        (6, "cannot log in after the update, login fails"),
        (7, "login fails every single time"),
    ]
    found = group_complaints(items)
    assert [(g.phrases[0], set(g.keys)) for g in found] == [
        ("dark mode", {1, 2, 3, 4}), ("login fails", {5, 6, 7})]
    assert "dark" not in found[0].phrases and "mode" not in found[0].phrases


def test_no_items_and_one_item():
    assert group_complaints([]) == []
    assert group_complaints([("a", "the new editor lost my work")]) == []
    alone = group_complaints([("a", "the new editor lost my work")], min_size=1)
    assert [(g.count, g.keys) for g in alone] == [(1, ("a",))]


def test_two_items():
    assert group_complaints([(1, "sync is broken"), (2, "what a lovely day")]) == []
    [group] = group_complaints([(1, "sync is broken again"), (2, "sync broken since monday")])
    assert group.count == 2 and "sync" in " ".join(group.phrases)


def test_identical_texts_make_one_group_with_one_quote():
    [group] = group_complaints([(i, "Bring back the old toolbar!") for i in range(6)])
    assert group.count == 6 and group.keys == tuple(range(6))
    assert group.quotes == ("Bring back the old toolbar!",)
    assert "old toolbar" in group.phrases


def test_texts_without_words_do_not_crash():
    assert group_complaints([(1, "!!!"), (2, "😡😡😡"), (3, "???"), (4, "12345"), (5, "")]) == []
    mixed = [(1, "!!!"), (2, "😡"), (3, "export is gone"), (4, "export is gone?!")]
    assert [set(g.keys) for g in group_complaints(mixed)] == [{3, 4}]


def test_other_languages_do_not_crash():
    items = [(1, "ужасное обновление"), (2, "ужасное обновление, верните старое"),
             (3, "新しいエディタは最悪"), (4, "新しいエディタは最悪です"), (5, "¡Qué horror!")]
    found = group_complaints(items)
    assert {1, 2} in [set(g.keys) for g in found]


def test_very_long_posts(rows, found):
    items = [(r["id"], r["text"]) for r in rows]
    long = [("long-1", "memory error " * 30_000), ("long-2", "lorem ipsum " * 50_000)]
    again = group_complaints(items + long)
    assert len(again) >= 3
    assert all(len(q) <= QUOTE_CHARS + 2 for g in again for q in g.quotes)


def test_label_of_a_complaint():
    group = Complaint(("dark mode", "contrast", "eyes"), 3, (1, 2, 3), ("a", "b"))
    assert group.label == "dark mode / contrast"
    assert Complaint((), 2, (1, 2), ("a",)).label == "(no common words)"


# English and French together: Mini-BAR's hand-made groups of Garmin Connect problem reports.


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    with MINIBAR.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def grouped(rows: list[dict]) -> list[Complaint]:
    return group_complaints([(r["row"], r["data"]) for r in rows], max_groups=len(rows))


def ari(rows: list[dict], found: list[Complaint]) -> float:
    """Adjusted Rand index against the hand-made groups; a post left out is a group of its own."""
    group_of = {k: g for g, c in enumerate(found) for k in c.keys}
    return adjusted_rand_score([r["ground_truth"] for r in rows],
                               [group_of.get(r["row"], f"alone {r['row']}") for r in rows])


def back(rows: list[dict], found: list[Complaint], true: str) -> Complaint | None:
    """The found group that holds more than half of a true group and is at least half from it."""
    truth = {r["row"]: r["ground_truth"] for r in rows}
    size = sum(t == true for t in truth.values())
    for group in found:
        n = sum(truth[k] == true for k in group.keys)
        if 2 * n > size and 2 * n >= group.count:
            return group
    return None


def test_the_minibar_fixture_is_what_its_readme_says(reports):
    sizes = Counter(r["ground_truth"] for r in reports)
    assert len(reports) == 140 and len(sizes) == 10 and min(sizes.values()) >= 5
    assert Counter(r["ori_lang"] for r in reports) == {"en": 68, "fr": 72}
    assert len({r["row"] for r in reports}) == len(reports)


def test_french_and_english_reports_group_together(reports):
    found = grouped(reports)
    lang = {r["row"]: r["ori_lang"] for r in reports}
    assert ari(reports, found) >= 0.15  # English-only method: 0.07
    assert sum(back(reports, found, t) is not None
               for t in {r["ground_truth"] for r in reports}) >= 5  # of 10; before: 0
    bilingual = [g for g in found if min(Counter(lang[k] for k in g.keys).values()) >= 3
                 and len({lang[k] for k in g.keys}) == 2]
    assert len(bilingual) >= 3


def test_a_problem_reported_in_both_languages_comes_back_as_one_group(reports):
    found = grouped(reports)
    lang = {r["row"]: r["ori_lang"] for r in reports}
    both = [t for t, n in Counter((r["ground_truth"], r["ori_lang"]) for r in reports).items()
            if n >= 4]
    themes = {t for t, _ in both if Counter(t for t, _ in both)[t] == 2}  # 4+ in each language
    assert len(themes) == 4
    together = [g for t in themes if (g := back(reports, found, t))
                and {lang[k] for k in g.keys} == {"en", "fr"}]
    assert len(together) >= 2  # English-only method: 0


def test_a_mixed_group_is_named_in_english(reports):
    found = grouped(reports)
    truth = {r["row"]: r["ground_truth"] for r in reports}
    lang = {r["row"]: r["ori_lang"] for r in reports}
    [group] = [g for g in found if "smart notifications" in g.phrases]
    langs = Counter(lang[k] for k in group.keys)
    assert langs["fr"] > langs["en"] >= 3  # mostly French, yet named by the English words
    assert Counter(truth[k] for k in group.keys).most_common(1)[0][1] >= 0.75 * group.count


def test_french_posts_alone_group_well(reports):
    french = [r for r in reports if r["ori_lang"] == "fr"]
    found = grouped(french)
    assert ari(french, found) >= 0.12  # English-only method: 0.05
    assert sum(back(french, found, t) is not None
               for t in {r["ground_truth"] for r in french}) >= 2  # before: 0
    english = [r for r in reports if r["ori_lang"] == "en"]
    assert ari(english, grouped(english)) >= 0.3  # before: 0.17


def test_the_same_problem_in_two_languages_is_one_group():
    items = [
        ("fr-1", "Depuis la mise à jour, la synchronisation avec ma montre ne fonctionne plus"),
        ("fr-2", "Synchronisation impossible avec la montre depuis la dernière mise à jour"),
        ("en-1", "Since the last update my watch won't sync"),
        ("en-2", "Watch sync broken after the update"),
        ("fr-3", "La batterie se vide en deux heures"),
        ("en-3", "Battery drains in two hours"),
        ("en-4", "battery drain is terrible, two hours max"),
        ("fr-4", "Batterie vide en quelques heures, inadmissible"),
    ]
    found = group_complaints(items)
    assert [set(g.keys) for g in found] == [{"fr-1", "fr-2", "en-1", "en-2"},
                                           {"fr-3", "fr-4", "en-3", "en-4"}]
    assert "sync" in " ".join(found[0].phrases) and "battery" in " ".join(found[1].phrases)


def test_words_are_read_alike_in_both_languages():
    def stems(text: str) -> set[str]:
        return {stem for stem, _ in _words(text)}

    french = stems("Les notifications ne marchent plus depuis la mise à jour")
    assert french == stems("The notifications stopped working since the update") - {"stopp"}
    assert stems("Problème de synchronisation") == stems("probleme synchronisations")
    assert stems("syncing") == stems("synced") == stems("sync") == stems("synchroniser")
    forms = [form for _, form in _words("Les données des tâches figées")]
    assert forms == ["data", "tâches", "figées"]  # English if translated, else as written
    stop, terms, _ = _languages()  # shipped data, read with importlib.resources
    assert {"depuis", "avec", "the", "doesn"} <= stop
    assert terms["mise", "jour"] == ("update",) and terms["montre",] == ("watch",)


def test_a_term_map_is_plain_text():
    text = ("# comment\n\nMise à jour = update  # why\nappli = app\n"
            "fréquence cardiaque = heart rate\n")
    assert _read_terms(text, "fr") == {
        ("mise", "jour"): ("update",), ("appli",): ("app",),
        ("frequence", "cardiaque"): ("heart", "rate")}
    for bad in ("montre watch", "= watch", "montre ="):
        with pytest.raises(ValueError, match="line 1"):
            _read_terms(bad, "fr")


# A launch's keywords stay in the themes (the issue: "offline mode", a keyword, was removed and
# its complaint came out in pieces). Posts written for these tests after the example.

LAUNCH_WORDS = ["new editor", "offline mode"]
OFFLINE = [
    "The new editor removed offline mode. I work on trains, this is a dealbreaker",
    "Why did the new editor drop offline mode?? I can't write on the plane anymore",
    "bring back offline mode please, the new editor is useless without it",
    "No offline mode in the new editor. Cancelling my subscription",
    "offline mode gone with the new editor, disappointing",
    "I hate that offline mode is gone. New editor is a step back",
    "new editor: where is offline mode? I lost a draft when my wifi dropped",
    "Lost my work because the new editor has no offline mode",
    "offline mode was the reason I paid for this app",
    "so offline mode is just gone now? great update",
    "Removing offline mode is a terrible decision",
    "I need offline mode for my commute, please restore it",
    "can't edit anything without wifi since offline mode was killed",
    "offline mode removal broke my workflow on flights",
]
OTHER = [
    "The new editor crashes on sync every time I open a big document",
    "new editor keeps crashing when syncing my notes",
    "sync crash in the new editor, lost two paragraphs",
    "Crash on sync since the new editor, please fix",
    "new editor toolbar is confusing, where is the bold button",
    "The toolbar in the new editor hides everything I need",
    "toolbar of the new editor is a mess, I can't find the table button",
    "new editor is slow to load, takes 10 seconds",
    "loading the new editor is slow on my laptop",
]
FEELINGS = [  # opinions of the launch, about nothing in particular: no theme
    "new editor is so disappointing",
    "I hate the new editor",
    "hate hate hate the new editor, disappointing",
    "the new editor is terrible",
    "terrible new editor, just terrible",
]


def launch_sample(offline: int) -> list[tuple[str, str]]:
    return ([(f"offline-{i}", t) for i, t in enumerate(OFFLINE[:offline])]
            + [(f"other-{i}", t) for i, t in enumerate(OTHER)]
            + [(f"feeling-{i}", t) for i, t in enumerate(FEELINGS)])


@pytest.mark.parametrize("offline", [8, 14])  # of 22 posts, and of 28: a half
def test_a_launch_keyword_that_is_the_complaint_is_one_theme_named_by_it(offline):
    items = launch_sample(offline)
    found = group_complaints(items, launch_words=LAUNCH_WORDS)
    [theme] = [g for g in found if "offline mode" in g.label]
    inside = sum(k.startswith("offline") for k in theme.keys)
    assert inside >= 0.85 * offline and theme.count <= inside + 1 and theme == found[0]
    assert not [k for g in found if g != theme for k in g.keys if k.startswith("offline")]
    assert len(set(theme.quotes)) == 2 and set(theme.quotes) <= set(OFFLINE)
    # what the report did before: the keyword removed, the complaint in pieces
    removed = group_complaints(items, ignore=LAUNCH_WORDS)
    assert max(sum(k.startswith("offline") for k in g.keys) for g in removed) <= offline / 2
    assert not any("offline" in g.label for g in removed)


def test_a_launch_keyword_most_posts_are_about_still_names_its_theme():
    items = launch_sample(14)[:14] + [(f"other-{i}", t) for i, t in enumerate(OTHER[:4])]
    found = group_complaints(items, launch_words=LAUNCH_WORDS)  # "offline mode" in 14 of 18
    assert found[0].label.startswith("offline mode") and found[0].count == 14


def test_the_launch_name_every_post_uses_names_no_theme_and_groups_nothing():
    found = group_complaints(launch_sample(8), launch_words=LAUNCH_WORDS)
    words = {w for g in found for phrase in g.phrases for w in phrase.split()}
    assert not words & {"new", "editor"}
    assert not [k for g in found for k in g.keys if k.startswith("feeling")]
    assert {"crash sync", "toolbar"} <= {g.phrases[0] for g in found}


def test_opinion_words_name_no_theme():
    for kwargs in ({}, {"ignore": LAUNCH_WORDS}, {"launch_words": LAUNCH_WORDS}):
        found = group_complaints(launch_sample(8), **kwargs)
        for group in found:
            assert not all(_is_opinion(w) for w in group.label.replace(" / ", " ").split()), (
                kwargs, group.label)  # before: "disappointing / hate", "terrible"
            assert not any(all(map(_is_opinion, p.split())) for p in group.phrases), group


def test_no_theme_of_the_fixtures_is_named_by_opinions_alone(rows, reports):
    samples = [[(r["id"], r["text"]) for r in rows]] + [
        [(r["row"], r["data"]) for r in reports if lang in ("mixed", r["ori_lang"])]
        for lang in ("mixed", "en", "fr")]
    for items in samples:  # before: "good", "thank", "dommage"
        for group in group_complaints(items, max_groups=len(items)):
            assert not any(all(map(_is_opinion, p.split())) for p in group.phrases), group


def test_opinion_words_come_from_vader_and_the_language_lists():
    for word in ("hate", "disappointing", "terrible", "Awful", "love", "great",  # VADER
                 "déçu", "Dommage", "nul", "énervé", "merde"):  # French lists
        assert _is_opinion(word), word
    for word in ("crash", "sync", "offline", "mode", "security", "alarm", "notifications",
                 "battery", "toolbar", "montre"):
        assert not _is_opinion(word), word
