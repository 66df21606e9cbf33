"""Learning from the team (issue 18, part 4) on SQLite and PostgreSQL: verdicts become labels,
``monitor learn`` installs a refit that is better and refuses one that is not, ``--undo`` goes
back, and scores say which model made them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from filing import save_scores
from sqlalchemy import select

from monitor import cases
from monitor.cli import main
from monitor.learn import learn, undo
from monitor.model import Fetch, Flag, Post
from monitor.queue import CaseError, QueuePolicy
from monitor.runtime import learned_models
from monitor.scoring import Scorer, training
from monitor.store import Store
from monitor.store.casework import case_of_post
from monitor.store.schema import scores

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LIMIT = 800  # shipped training rows per fit: enough to learn, fast enough for a test
SCORER = Scorer()
BUGS = ["the crash when syncing", "login errors on Android", "a freeze on the map screen",
        "missing notifications", "wrong step counts", "the battery drain",
        "sleep data not saving", "broken export to Strava", "duplicate activities",
        "slow startup", "the blank dashboard", "lost workouts"]


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def add(store: Store, ext: str, text: str, *, flagged: bool = True) -> tuple[int, int | None]:
    """A post saved, scored by the shipped models and (``flagged``) filed: (post id, case)."""
    post = Post(source="forum", external_id=ext, url=f"https://f.test/{ext}", author="ann",
                title=None, text=text, published_at=NOW - timedelta(minutes=5), thread_id=ext)
    store.save_fetch("forum", "forum", Fetch((post,), None), NOW)
    stored = store.stored_post("forum", ext)
    assert stored is not None
    flag = Flag("high", ("r1",), ("r1: a complaint",), "backlash") if flagged else None
    save_scores(store, [(stored, SCORER.score_post(post), flag)], NOW)
    with store.engine.connect() as db:
        return stored.id, case_of_post(db, stored.id)


def labels_of(store: Store, post_id: int) -> list[tuple[str, bool, str]]:
    return [(r["signal"], r["value"], r["origin"]) for r in store.post_labels(post_id)]


def changelog(i: int, rng: random.Random) -> str:
    """What the shipped complaint model takes for a complaint and the team does not."""
    one, two = rng.sample(BUGS, 2)
    return f"Release notes for version 4.{i}: fixed {one}; fixed {two}. Thanks for the reports!"


def complaint(i: int, rng: random.Random) -> str:
    one, two = rng.sample(BUGS, 2)
    return f"Since version 4.{i} I get {one} and {two}. Please fix it."


# --- verdicts are labels ---------------------------------------------------------------------

def test_each_verdict_is_a_label(store: Store) -> None:
    policy = QueuePolicy.of()
    angry, angry_case = add(store, "a", "This update is GARBAGE, you ruined it!!! Sync is broken")
    calm, calm_case = add(store, "b", "Since the update the sync stopped working.")
    spam, spam_case = add(store, "c", "Buy cheap followers now")
    dup, dup_case = add(store, "d", "Sync broken again")
    low, low_case = add(store, "e", "The export stopped working after the update")
    missed, _ = add(store, "f", "The widget shows nothing since Tuesday", flagged=False)

    cases.confirm(store, angry_case, actor="ana", now=NOW)
    assert labels_of(store, angry) == [("complaint", True, "confirm"), ("anger", True, "confirm")]
    cases.dismiss(store, calm_case, "Not a complaint: a question", actor="ana", now=NOW)
    assert labels_of(store, calm) == [("complaint", False, "dismiss")]
    cases.dismiss(store, spam_case, "spam", actor="ana", now=NOW)
    assert sorted(labels_of(store, spam)) == [("anger", False, "dismiss"),
                                             ("complaint", False, "dismiss")]
    cases.dismiss(store, dup_case, "a duplicate of case 1", actor="ana", now=NOW)
    assert labels_of(store, dup) == []  # says nothing about the post

    raised = cases.set_severity(store, low_case, "critical", actor="bo", now=NOW, policy=policy)
    assert raised.severity == "critical"
    assert labels_of(store, low) == [("complaint", True, "severity")]
    cases.set_severity(store, low_case, "medium", actor="bo", now=NOW, policy=policy)
    assert len(labels_of(store, low)) == 1  # lowered, but not to low: no label
    cases.set_severity(store, low_case, "low", actor="bo", now=NOW, policy=policy)
    assert labels_of(store, low)[-1] == ("complaint", False, "severity")

    assert cases.flag_post(store, "https://f.test/f", {"complaint": True}, actor="cy",
                           now=NOW) == (missed, None)
    assert labels_of(store, missed) == [("complaint", True, "flag")]
    with pytest.raises(CaseError, match="no stored post"):
        cases.flag_post(store, "https://f.test/nope", {"complaint": True}, actor="cy", now=NOW)

    latest = {(x.post_id, x.signal): x.value for x in store.team_labels()}
    assert latest[(low, "complaint")] is False  # the latest verdict wins
    assert latest[(missed, "complaint")] is True


def test_cli_verdicts(store: Store, make_project) -> None:
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store.url)
    post, case = add(store, "a", "Since the update the sync stopped working.")
    other, other_case = add(store, "b", "Lovely app, thanks")

    def run(*args: str) -> object:
        return CliRunner().invoke(main, [*args, "--config", str(path), "--as", "ana"])

    done = run("queue", "confirm", str(case))
    assert done.exit_code == 0 and "confirmed" in done.output
    done = run("queue", "severity", str(other_case), "low")
    assert done.exit_code == 0 and "low" in done.output
    done = run("queue", "flag", "https://f.test/b", "--no-complaint", "--not-angry")
    assert done.exit_code == 0 and "complaint no, anger no" in done.output
    assert run("queue", "flag", "https://f.test/zzz").exit_code == 1
    assert run("queue", "severity", str(case), "huge").exit_code == 2
    assert labels_of(store, post) == [("complaint", True, "confirm")]
    assert labels_of(store, other) == [("complaint", False, "severity"),
                                       ("complaint", False, "flag"), ("anger", False, "flag")]


# --- learning --------------------------------------------------------------------------------

def test_a_round_that_improves_is_installed_and_used_until_undone(store: Store) -> None:
    rng = random.Random(0)
    for i in range(30):  # the team dismisses changelogs, confirms real complaints
        _, case = add(store, f"log{i}", changelog(i, rng))
        cases.dismiss(store, case, "not a complaint: release notes", actor="ana", now=NOW)
        _, case = add(store, f"bug{i}", complaint(i, rng))
        cases.confirm(store, case, actor="ana", now=NOW)
    assert learned_models(store) == {}

    report = learn(store, NOW, "ana", signals=["complaint"], limit=LIMIT, weights=[10.0],
                   folds=3)
    english = next(r for r in report.rounds if r.language == "en")
    assert english.outcome == "installed", english
    assert english.after["team"].precision > english.before["team"].precision + 0.2
    assert not report.refused
    assert next(r for r in report.rounds if r.language == "fr").outcome == "nothing to learn"

    models = learned_models(store)
    name, _ = models[("complaint", "en")]
    assert name == f"learned:{english.model_id}"
    scorer = Scorer(learned=models)
    fresh = changelog(99, random.Random(5))
    assert scorer.score(None, fresh).complaint < 0.5 <= SCORER.score(None, fresh).complaint
    mixed = scorer.score(None, "You broke sync AGAIN, this is a disgrace!!!")
    assert mixed.model == f"complaint:{name},anger:shipped"
    assert scorer.score(None, "L'appli plante depuis la mise à jour").model == "shipped"

    assert undo(store, ["complaint"]) == [("complaint", "en", (english.model_id, None)),
                                          ("complaint", "fr", None)]
    assert learned_models(store) == {}
    assert Scorer(learned=learned_models(store)).score(None, fresh).model == "shipped"


def test_a_round_that_is_not_better_is_refused(store: Store) -> None:
    rng = random.Random(1)
    for i in range(20):  # plain problem reports, which someone keeps calling no complaint
        add(store, f"p{i}", complaint(i, rng), flagged=False)
        cases.flag_post(store, f"https://f.test/p{i}", {"complaint": False}, actor="bo",
                        now=NOW)
    report = learn(store, NOW, "bo", signals=["complaint"], limit=LIMIT, weights=[30.0],
                   folds=2)
    english = next(r for r in report.rounds if r.language == "en")
    assert english.outcome == "refused", english
    assert report.refused
    assert store.active_models() == {}


def test_cli_learn(store: Store, make_project) -> None:
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store.url)

    def run(*args: str) -> object:
        return CliRunner().invoke(main, ["learn", *args, "--config", str(path)])

    empty = run()
    assert empty.exit_code == 0 and "no labels yet" in empty.output
    undone = run("--undo")
    assert undone.exit_code == 0 and "shipped model is in use already" in undone.output
    assert run("--undo", "--dry-run").exit_code == 2
    assert run("--signal", "nonsense").exit_code == 2


def test_rescore_records_the_learned_model(store: Store, make_project) -> None:
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store.url)
    english, _ = add(store, "a", "Since the update the sync stopped working.", flagged=False)
    french, _ = add(store, "b", "L'appli plante depuis la mise à jour, rien ne marche",
                    flagged=False)
    assert made_by(store, english) == "shipped"
    shipped = Path(training.__file__).parent / "languages"  # any model's bytes will do
    anger = store.install_model("anger", "en", (shipped / "en" / "anger.npz").read_bytes(), {},
                                now=NOW, actor="t")
    fr = store.install_model("complaint", "fr", (shipped / "fr" / "complaint.npz").read_bytes(),
                             {}, now=NOW, actor="t")
    done = CliRunner().invoke(main, ["rescore", "--config", str(path)])
    assert done.exit_code == 0, done.output
    assert made_by(store, english) == f"complaint:shipped,anger:learned:{anger}"
    assert made_by(store, french) == f"learned:{fr}"


def made_by(store: Store, post_id: int) -> str | None:
    with store.engine.connect() as db:
        return db.execute(select(scores.c.model).where(scores.c.post_id == post_id)).scalar()


def test_the_daemon_picks_a_new_model_up(store: Store, make_project) -> None:
    from monitor.daemon import Daemon

    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store.url)
    daemon = Daemon(path)
    try:
        assert daemon.runtime.scorer.score(None, "It crashes").model == "shipped"
        shipped = Path(training.__file__).parent / "languages" / "en" / "complaint.npz"
        model_id = store.install_model("complaint", "en", shipped.read_bytes(), {}, now=NOW,
                                       actor="t")
        daemon._watch()  # the job that runs every few seconds
        made = daemon.runtime.scorer.score(None, "It crashes since the update").model
        assert made == f"complaint:learned:{model_id},anger:shipped"
        undo(store)
        daemon._watch()
        assert daemon.runtime.scorer.score(None, "It crashes").model == "shipped"
    finally:
        daemon.store.close()
        for lock in daemon.single or ():  # the daemon's SQLite locks, held for its life
            lock.close()
