"""The `qa` command: a thin typer layer over the library (index, ask, serve)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from qa import logs
from qa.config import Settings
from qa.errors import QAError
from qa.keys_cli import keys_app

app = typer.Typer(
    help="Ask questions about a folder of documents, in any language, with exact citations.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True)

SeedsOpt = Annotated[Path | None, typer.Option("--seeds-dir", help="Documents folder [env QA_SEEDS_DIR].")]
IndexOpt = Annotated[Path | None, typer.Option("--index-dir", help="Index folder [env QA_INDEX_DIR].")]
EmbedderOpt = Annotated[
    str | None, typer.Option("--embedder", help="e5 | use | e5+use | sentence-transformers:MODEL [env QA_EMBEDDER].")
]


def _settings(seeds_dir: Path | None, index_dir: Path | None, embedder: str | None) -> Settings:
    overrides = {"seeds_dir": seeds_dir, "index_dir": index_dir, "embedder": embedder}
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:  # e.g. QA_API_KEY="": one line naming the setting, no traceback
        messages = (str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise _fail("invalid configuration: " + "; ".join(messages)) from None


def _fail(exc: Exception) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
    return typer.Exit(1)


def _index(settings: Settings, rebuild: bool = False, quiet: bool = False):
    from qa.indexer import build_index

    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}", markup=False),  # the current file's name, shown as it is named
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(doc_id: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=doc_id)
            if not quiet and not err.is_interactive:  # no live bar in a log file or pipe: one line per file
                err.print(Text(f"indexing {done}/{total} {doc_id}"), highlight=False)

        report, data = build_index(settings, rebuild=rebuild, progress=progress)
    # file names and reasons are data, never Rich markup: "[/usr] notes.txt" must print as it is named
    for doc_id in report.added:
        err.print(Text.assemble("  ", ("added", "green"), f"    {doc_id}"), highlight=False)
    for doc_id in report.updated:
        err.print(Text.assemble("  ", ("updated", "yellow"), f"  {doc_id}"), highlight=False)
    for doc_id in report.removed:
        err.print(Text.assemble("  ", ("removed", "magenta"), f"  {doc_id}"), highlight=False)
    for failure in report.failed:
        err.print(Text.assemble("  ", ("failed", "red"), f"   {failure.path}: {failure.reason}"), highlight=False)
    err.print(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed; "
        f"{report.documents} documents, {report.chunks} chunks, {report.embedded} texts embedded "
        f"in {report.seconds:.1f}s" + ("" if report.written or not report.unchanged else " (index already up to date)")
    )
    return report, data


@app.command()
def index(
    seeds_dir: SeedsOpt = None,
    index_dir: IndexOpt = None,
    embedder: EmbedderOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Re-embed everything, ignoring the existing index.")
    ] = False,
) -> None:
    """Index the seeds folder (incremental: only new or changed files are embedded).

    Example: qa index --seeds-dir ./seeds
    """
    from qa.indexer import merge_due, merge_index
    from qa.staging import recover

    settings = _settings(seeds_dir, index_dir, embedder)
    for line in recover(settings.seeds_dir):  # an upload a crash left unconfirmed is rolled back, never indexed
        err.print(Text(line), highlight=False)
    try:
        report, data = _index(settings, rebuild)
        if merge_due(settings, data):  # here in the foreground: `qa serve` merges in the background
            err.print("merging the index's segments into a new base ...")
            merge_index(settings, live=data)
    except QAError as exc:
        raise _fail(exc) from None
    if report.failed and not report.documents:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in any language.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=20, help="Number of citations.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON response body.")] = False,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Search only this collection (repeat for more); default: all."),
    ] = None,
    seeds_dir: SeedsOpt = None,
    index_dir: IndexOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Answer a question from the index, with numbered citations.

    Example: qa ask "who commands US troops in Japan?" --collection hr
    """
    from qa.api import load_answerer
    from qa.schemas import AskRequest, AskResponse

    settings = _settings(seeds_dir, index_dir, embedder)
    try:
        request = AskRequest(question=question, top_k=top_k, collections=collection or None)
    except ValueError as exc:
        error = exc.errors()[0]
        what = "collection" if error["loc"] and error["loc"][0] == "collections" else "question"
        raise _fail(f"invalid {what}: {error['msg'].removeprefix('Value error, ')}") from None
    scope = None if request.collections is None else frozenset(request.collections)
    try:
        answer = load_answerer(settings).ask(request.question, request.top_k, collections=scope)
    except QAError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(AskResponse.from_answer(answer).model_dump_json())
        return
    _print_answer(asdict(answer))


def _print_answer(answer: dict) -> None:
    """Document text and titles go in as ``Text``, never as markup: "Files live in [/usr/share]." is data."""
    if answer.get("no_answer_reason") == "small_talk":
        out.print(Text("That reads as small talk; ask me something the documents could answer.", style="yellow"))
        return
    if answer["no_answer"]:
        out.print(Text.assemble(("No passage in the corpus seems to answer this.", "yellow"), " Closest passages:"))
    else:
        out.print(Text(answer["answer"], style="bold"), soft_wrap=True, highlight=False)  # one line, for scripts
    out.print()
    for c in answer["citations"]:
        h = c["highlight"]
        before, after = c["text"][: h["start"] - c["start"]], c["text"][h["end"] - c["start"] :]
        page = f", p. {c['page']}" if c.get("page") else ""
        where = f" {c['title']} ({c['document']}:{c['start']}-{c['end']}{page}, score {c['score']:.3f})"
        out.print(Text.assemble((f"[{c['rank']}]", "cyan"), where), highlight=False)
        out.print(Text.assemble("    ", before, (h["text"], "reverse"), after), highlight=False)
    out.print(Text(f"{answer['took_ms']:.0f} ms", style="dim"))


@app.command("eval")
def eval_(
    questions: Annotated[Path, typer.Option("--questions", help="SQuAD-format file whose questions are asked.")],
    contexts: Annotated[
        Path, typer.Option("--contexts", help="SQuAD-format file whose paragraphs are indexed (paired by question id).")
    ],
    top_k: Annotated[int, typer.Option("--top-k", min=5, max=50, help="Documents ranked per question (MRR cut).")] = 10,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Ask only the first N questions.")] = None,
    history: Annotated[
        str | None, typer.Option("--history", help="An earlier user turn sent with every question (chat robustness).")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Keep the paragraphs' index here, so a rerun embeds nothing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
    conversation: Annotated[
        bool,
        typer.Option(
            "--conversation", help="Ask every question alone and inside chats (after other questions), and follow-ups."
        ),
    ] = False,
    follow_ups: Annotated[
        Path | None, typer.Option("--follow-ups", help="Follow-up file for --conversation (default: the bundled set).")
    ] = None,
    embedder: EmbedderOpt = None,
    store: Annotated[
        str, typer.Option("--store", help="faiss | milvus: the store eval builds its own index in.")
    ] = "faiss",
    milvus_uri: Annotated[
        str | None, typer.Option("--milvus-uri", help="Milvus server for --store milvus [env QA_MILVUS_URI].")
    ] = None,
) -> None:
    """Measure retrieval and highlighting on SQuAD/XQuAD files through the service's own pipeline.

    With --store milvus the paragraphs go to a collection of eval's own on that server (a fresh name, dropped
    afterwards), never to QA_MILVUS_COLLECTION.

    Example (XQuAD cloned into data/xquad, see the README): qa eval --questions data/xquad/xquad.en.json
    --contexts data/xquad/xquad.de.json
    """
    import json

    from qa.eval import evaluate, load_eval_set
    from qa.eval_conversation import FOLLOW_UPS, evaluate_conversation

    settings = _settings(None, None, embedder)
    if store not in ("faiss", "milvus"):
        raise typer.BadParameter(f"{store!r}: choose faiss or milvus", param_hint="--store")
    uri = (milvus_uri or settings.milvus_uri) if store == "milvus" else None
    try:
        eval_set = load_eval_set(questions, contexts, limit)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            def announce(line: str) -> None:
                err.print(line, highlight=False, markup=False)

            result: dict = (
                evaluate_conversation(
                    settings, eval_set, top_k=top_k, progress=progress, workdir=workdir, announce=announce,
                    follow_ups=follow_ups or FOLLOW_UPS, pool=load_eval_set(questions, contexts).questions,
                    milvus_uri=uri,
                )
                if conversation
                else evaluate(
                    settings, eval_set, top_k=top_k, progress=progress, history=history, workdir=workdir,
                    announce=announce, milvus_uri=uri,
                )
            )  # fmt: skip
    except QAError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(result))
        return
    if "decision" in result:  # which no-answer decision the figures are of, on one line
        note = result.pop("decision_note")
        result["decision"] = f"{result['decision']}: {note}"
    for key, value in _flat(result):
        out.print(f"{key:>22}  {value}", highlight=False, markup=False, soft_wrap=True)


def _flat(result: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested figures (``--conversation``) as dotted keys, one per line."""
    rows: list[tuple[str, object]] = []
    for key, value in result.items():
        if isinstance(value, dict):
            rows.extend(_flat(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    seeds_dir: SeedsOpt = None,
    index_dir: IndexOpt = None,
    embedder: EmbedderOpt = None,
    watch: Annotated[
        bool | None,
        typer.Option("--watch/--no-watch", help="Re-index when the seeds folder changes [env QA_WATCH, default on]."),
    ] = None,
) -> None:
    """Serve the API and the web chat at once; a first or stale index is built in the background.

    Until the first index lands, /ask answers 503 with the progress (also in /healthz); after that it
    answers from the previous index while a newer one builds.

    Example: qa serve --port 8000, then open http://127.0.0.1:8000/
    """
    import uvicorn

    from qa.api import create_app
    from qa.auth import new_session_token
    from qa.keys import KeyProblem, Keyring
    from qa.security import allowed_hosts, is_loopback

    settings = _settings(seeds_dir, index_dir, embedder)
    if watch is not None or settings.watch is None:
        settings = settings.model_copy(update={"watch": True if watch is None else watch})
    if host not in ("0.0.0.0", "::", "") and host.lower() not in allowed_hosts(settings):
        # the address it was told to bind is how clients will name it: serve that Host too
        extra = ",".join(filter(None, [settings.allowed_hosts, host]))
        settings = settings.model_copy(update={"allowed_hosts": extra})
    try:
        keyed = Keyring(settings.key_file_path(), settings.api_key).configured()
    except KeyProblem as exc:
        raise _fail(exc) from None
    if not keyed and not settings.anonymous_read and not is_loopback(host):
        raise _fail(
            f"refusing to serve on {host} with no key configured: anyone who can reach it would read every "
            "document. Either create a key (qa keys add NAME --read '*', then send 'Authorization: Bearer KEY'), "
            "or set QA_ANONYMOUS_READ=1 to serve reads to anyone (writes still need a key)"
        )
    log_config = logs.configure(settings.log_format)
    say = _announcer(settings.log_format)
    if host in ("0.0.0.0", "::") and not settings.allowed_hosts and "*" not in allowed_hosts(settings):
        say(
            "[yellow]note:[/yellow] only requests for localhost are served; name the host clients use in "
            "QA_ALLOWED_HOSTS (or QA_PUBLIC_URL)"
        )
    token = new_session_token()
    try:
        app = create_app(settings, index_on_start=True, session_token=token)
    except QAError as exc:
        raise _fail(exc) from None
    local = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    shown = f"[{local}]" if ":" in local else local
    say(f"qa is answering on http://{host}:{port}/ (API docs at /docs)")
    # like Jupyter: the page reads the token from the fragment (never sent to a server), and sends it on writes
    say("open this URL to ask and to change documents; its token is an admin key for this process only:")
    say(f"    http://{shown}:{port}/#token={token}")
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=log_config)


def _announcer(log_format: str) -> Callable[..., None]:
    """What `qa serve` tells its operator at start: a console line, or with QA_LOG_FORMAT=json a JSON log line
    (a log shipper reading stderr then gets nothing but JSON)."""
    if log_format == "json":
        logger = logging.getLogger("qa.serve")
        return lambda markup, level=logging.INFO: logger.log(level, "%s", Text.from_markup(markup).plain)
    return lambda markup, level=logging.INFO: err.print(markup, highlight=False, soft_wrap=True)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
