"""`nextai-serve`: parse flags, load the model, run uvicorn. No logic here."""

from __future__ import annotations

import click


@click.command()
@click.option("--base-model", required=True, help="Base model folder or hub id (e.g. meta-llama/Llama-2-70b-hf).")
@click.option("--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none serves the base.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; loopback only unless you mean to expose the model.")
@click.option("--port", default=8080, show_default=True, help="HELM's challenge config used 8080.")
@click.option("--load-in-4bit/--no-load-in-4bit", default=None,
              help="NF4 as trained; default: on when a CUDA GPU is present, off on CPU.")
@click.option("--max-new-tokens", default=1024, show_default=True, help="Largest max_new_tokens a request may ask.")
@click.option("--max-body-bytes", default=1 << 20, show_default=True, help="Largest request body accepted.")
@click.option("--seed", default=0, show_default=True, help="Sampling seed for requests that bring none.")
def main(base_model, adapter, host, port, load_in_4bit, max_new_tokens, max_body_bytes, seed) -> None:
    """Serve BASE_MODEL (+ ADAPTER) over HELM's /process, /tokenize and /decode."""
    import uvicorn

    from axolotl_nextai.serve import HelmModel, Limits, create_app

    model = HelmModel.load(base_model, adapter, load_in_4bit, seed)
    app = create_app(model, Limits(max_new_tokens=max_new_tokens, max_body_bytes=max_body_bytes))
    uvicorn.run(app, host=host, port=port)


if __name__ == "__main__":
    main()
