"""`custos audit witness`: the standalone witness (verifier/witness.py) under the custos
command, for an auditor who has Custos installed. It runs the same code as
`python -m verifier witness`, which needs nothing of Custos but the verifier folder."""

from __future__ import annotations

import click

from api.cli.audit import audit


@audit.command(
    "witness",
    example='custos audit witness --log https://shop.example --log-key "$(cat log.vkey)" '
    "--state ~/.custos-witness --key witness.key",
    short_help="check the log's newest checkpoint against the last one accepted; cosign",
    env=(),
)
@click.option("--log", "log_url", required=True, help="the log's base URL (the shop's Custos)")
@click.option(
    "--log-key", "vkeys", required=True, multiple=True, help="a pinned log key (vkey; repeatable)"
)
@click.option("--state", required=True, help="this witness's folder: the accepted checkpoint")
@click.option("--key", "key_file", help="a witness key file (python -m verifier witness-key)")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="seconds a request")
def witness_command(
    log_url: str, vkeys: tuple[str, ...], state: str, key_file: str | None, timeout: float
) -> int:
    """Fetch the log's newest signed checkpoint, check its signature with the pinned keys
    and, against the checkpoint this witness accepted last, the consistency proof the log
    serves; keep it and cosign it (with --key). Exit 0 when it holds; 2 with a line
    starting ALARM: naming the attack (a shrunk tree, two roots for one size, a proof that
    fails, a bad signature), the evidence kept in the state folder; 1 when nothing could
    be checked (the log unreachable, a malformed answer). Run it from cron on a machine
    the shop does not control."""
    from verifier.__main__ import main

    args = ["witness", "--log", log_url, "--state", state, "--timeout", str(timeout)]
    for vkey in vkeys:
        args += ["--log-key", vkey]
    if key_file:
        args += ["--key", key_file]
    return main(args)
