"""`nextai-serve`: parse flags, check what can be checked before the model loads, load it, run uvicorn."""

from __future__ import annotations

import socket

import click

from data_builders.boundary import Guarded
from data_builders.extras import require_extra


def check_listen(host: str, port: int) -> None:
    """Bind `host:port` once, so a taken port or an unknown host fails before the model loads."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as err:
        raise click.ClickException(
            f"--host {host} --port {port}: cannot listen ({err.strerror or err})"
        ) from None


@click.command(cls=Guarded)
@click.option(
    "--base-model", required=True, help="Base model folder or hub id (e.g. meta-llama/Llama-2-70b-hf)."
)
@click.option(
    "--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none serves the base."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; loopback only unless you mean to expose the model.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="HELM's challenge config used 8080.",
)
@click.option(
    "--load-in-4bit/--no-load-in-4bit",
    default=None,
    help="NF4 as trained; default: on when a CUDA GPU is present, off on CPU.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=0),
    default=1024,
    show_default=True,
    help="Largest max_new_tokens a request may ask.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="Largest request body accepted.",
)
@click.option(
    "--max-completions",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Largest num_return_sequences a request may ask.",
)
@click.option(
    "--max-top-logprobs",
    type=click.IntRange(min=1),
    default=1 << 18,
    show_default=True,
    help="Most top_logprob entries in one answer (top_k_per_token x scored tokens).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Open connections beyond this get a 503 and are closed.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a connection has to send a complete request (after connecting or its last answer).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Sampling seed for requests that bring none.",
)
def main(
    base_model,
    adapter,
    host,
    port,
    load_in_4bit,
    max_new_tokens,
    max_body_bytes,
    max_completions,
    max_top_logprobs,
    max_connections,
    request_timeout,
    seed,
) -> None:
    """Serve BASE_MODEL (+ ADAPTER) over HELM's /process, /tokenize and /decode."""
    require_extra("nextai-serve", "serve")
    from axolotl_nextai.models.checkpoint import ModelPathError, check_model_paths
    from axolotl_nextai.serve.connections import guarded_h11, raise_descriptor_limit
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    try:
        raise_descriptor_limit(max_connections)
        check_model_paths(base_model, adapter)
        check_listen(host, port)
        from axolotl_nextai.serve import HelmModel

        model = HelmModel.load(base_model, adapter, load_in_4bit, seed)
    except (ModelPathError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from axolotl_nextai.serve import Limits, create_app

    limits = Limits(
        max_new_tokens=max_new_tokens,
        max_body_bytes=max_body_bytes,
        max_completions=max_completions,
        max_top_logprobs=max_top_logprobs,
    )
    # Our refusals and warnings beside uvicorn's lines, in its format.
    log_config = {
        **LOGGING_CONFIG,
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "axolotl_nextai.serve": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
    uvicorn.run(
        create_app(model, limits),
        host=host,
        port=port,
        log_config=log_config,
        http=guarded_h11(max_connections, request_timeout),
    )


if __name__ == "__main__":
    main()
