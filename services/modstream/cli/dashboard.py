"""``modstream dashboard …``: the reviewer dashboard, and its users."""

from typing import TYPE_CHECKING, Annotated

import typer

from modstream.cli.console import console, err, get_settings

if TYPE_CHECKING:
    from modstream.core.review_rules import ReviewRules
    from modstream.core.settings import Settings
    from modstream.models.card_page import ModelCardsPage
    from modstream.policy.watcher import Sections
    from modstream.quality.page import QualityPage

app = typer.Typer(help="The reviewer dashboard and its users.")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="port (default MODSTREAM_DASHBOARD_PORT)")] = None,
) -> None:
    """Serve the reviewer dashboard on MODSTREAM_BIND_HOST (and feed review requests into the queues)."""
    if ctx.invoked_subcommand is not None:
        return
    from modstream.bank.http import BankApi
    from modstream.cli.labels import taxonomy_labels
    from modstream.core.appeals import AppealRules
    from modstream.core.review_rules import ReviewRules
    from modstream.erasure.http import ErasureApi
    from modstream.explain.store import maps_on_demand
    from modstream.policy.watcher import Sections
    from modstream.review.web.server import run_dashboard, users_file

    settings = get_settings()
    if not users_file(settings).is_file():
        err.print("no dashboard users yet: add one with `modstream dashboard add-user NAME --role admin`")
        raise typer.Exit(2)
    console.print(f"dashboard on http://{settings.bind_host}:{port or settings.dashboard_port}/")
    # The bank room serves HMA's routes behind the dashboard's tokens, its live list of banks
    # is what the job page offers a reviewer to add an image to, and it checks a phrase of the
    # image's text that a reviewer banks. A label an admin defines must not be one of the
    # taxonomy's (read at each definition).
    banks = BankApi(settings)
    # Each tenant's appeals section; the legal minimums while the policy files are invalid.
    appeal_rules = Sections(settings.policies_dir, lambda policy: policy.appeals, AppealRules())
    # Each tenant's review section (severe labels, due targets, exposure limits); the defaults
    # (nothing severe) while the files are invalid.
    review_rules = Sections(settings.policies_dir, lambda policy: policy.review, ReviewRules())
    run_dashboard(
        settings,
        port=port,
        admin_pages=[quality_page(settings, review_rules)],
        reader_pages=[model_cards_page(settings)],
        extensions=[banks, ErasureApi(settings)],
        bank_names=banks.names,
        bank_value=banks.value,
        taxonomy_labels=lambda: taxonomy_labels(settings),
        appeal_rules=appeal_rules,
        review_rules=review_rules,
        # The review page's heat maps: the decision's own models in Triton, kept per event and version.
        explain=maps_on_demand(settings),
    )


def quality_page(settings: "Settings", review_rules: "Sections[ReviewRules]") -> "QualityPage":
    """The quality room's page, given the review room's tallies of answers on gold items (and the
    default policy's threshold for them), which the quality room cannot import."""
    import redis.asyncio as aioredis

    from modstream.quality.page import QualityPage
    from modstream.review.gold import GoldBook

    gold = GoldBook(aioredis.Redis.from_url(settings.redis_url))
    return QualityPage(settings, gold=gold.tallies, gold_rules=lambda: review_rules("").gold)


def model_cards_page(settings: "Settings") -> "ModelCardsPage":
    """The models room's Model cards page, for every signed-in user: the serving ensemble's and
    its components' cards, made from the quality room's reading of the archive and its drift
    monitor's state, which the models room cannot import."""
    from modstream.cli.model_cards import ArchiveEvidence, notices_path
    from modstream.models.card_page import ModelCardsPage
    from modstream.models.served_cards import ServedCards

    evidence = ArchiveEvidence(settings)
    cards = ServedCards(settings.model_repository, settings.triton_model, evidence, notices_path(settings))
    return ModelCardsPage(cards)


@app.command("add-user")
def add_user(
    name: str,
    role: Annotated[str, typer.Option(help="reviewer or admin")] = "reviewer",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="MODSTREAM_NEW_USER_PASSWORD",
            help="asked for when not given (or taken from MODSTREAM_NEW_USER_PASSWORD, for scripts)",
        ),
    ] = "",
) -> None:
    """Add a dashboard user (or set their role and password); the password is stored hashed."""
    from modstream.review.web import users
    from modstream.review.web.server import users_file

    if role not in ("reviewer", "admin"):
        err.print("role must be reviewer or admin")
        raise typer.Exit(2)
    if len(password) < 8:
        err.print("use a password of 8 characters or more")
        raise typer.Exit(2)
    path = users_file(get_settings())
    users.add_user(path, name, role, password)  # type: ignore[arg-type]
    console.print(f"{name} ({role}) saved in {path}")


@app.command("token")
def token(name: str) -> None:
    """Mint an API token for a dashboard user (shown once; the previous one stops working)."""
    from modstream.review.web.server import users_file
    from modstream.review.web.users import mint_token

    try:
        print(mint_token(users_file(get_settings()), name))
    except KeyError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
