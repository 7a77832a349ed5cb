"""A local stand-in for the Hugging Face Hub: dataset repositories served over HTTP in the layout each has on
the Hub, so `huggingface_hub` and `datasets` (pointed at it with HF_ENDPOINT) run their real code against it.

Endpoints, as `huggingface_hub` 1.x and `datasets` 4.x call them (read from their sources:
`HfApi.dataset_info`, `list_repo_tree`, `get_paths_info`, `get_hf_file_metadata` / `hf_hub_download`,
`HfFileSystem`):

    GET  /api/datasets/{id}[/revision/{rev}]        repository info (sha, gated, siblings)
    GET  /api/datasets/{id}/tree/{rev}[/{path}]     files and folders (?recursive=true)
    POST /api/datasets/{id}/paths-info/{rev}        the entries of the form's `paths`
    HEAD|GET /datasets/{id}/resolve/{rev}/{path}    a file (X-Repo-Commit, ETag, Content-Length; Range)

Errors carry the headers `huggingface_hub.utils.hf_raise_for_status` reads: `X-Error-Code` RepoNotFound (401,
as the Hub answers an anonymous caller), RevisionNotFound / EntryNotFound (404), GatedRepo (401 without a
token, 403 with a token not granted access). A gated repository answers as the Hub does since 2024: its info,
tree and card (README.md, .gitattributes) to anyone, its other files only to a granted token.

A ThreadingHTTPServer: files are immutable bytes, so concurrent requests get exactly what serial ones get.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PUBLIC_IN_GATED = {"README.md", ".gitattributes"}


@dataclass
class Repo:
    """A dataset repository: commits (sha -> {path: bytes}), refs (branch or ref name -> sha), gating."""

    repo_id: str
    commits: dict[str, dict[str, bytes]]
    refs: dict[str, str]
    gated: bool = False
    granted_tokens: set[str] = field(default_factory=set)

    def resolve(self, revision: str) -> str | None:
        """The commit sha a revision names (a ref, or a sha of this repo), None if none."""
        return self.refs.get(revision) or (revision if revision in self.commits else None)


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def folders_of(files: dict[str, bytes]) -> set[str]:
    return {"/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)}


def entry(files: dict[str, bytes], path: str) -> dict:
    """A tree / paths-info entry, as the Hub writes it (files: oid = git blob sha, size)."""
    if path in files:
        return {"type": "file", "path": path, "oid": git_blob_sha(files[path]), "size": len(files[path])}
    return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0}


class HubServer:
    """`with HubServer(repos) as hub:` serves `repos` at `hub.url` until the block ends; `hub.requests` lists
    (method, path) of every request, in order."""

    def __init__(self, repos: list[Repo]):
        self.repos = {r.repo_id: r for r in repos}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: requests are kept in hub.requests instead
                pass

            def do_HEAD(self) -> None:
                self.route("HEAD")

            def do_GET(self) -> None:
                self.route("GET")

            def do_POST(self) -> None:
                self.route("POST")

            def route(self, method: str) -> None:
                url = urlsplit(self.path)
                with hub.lock:
                    hub.requests.append((method, url.path))
                parts = url.path.strip("/").split("/")
                if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
                    return self.api(method, "/".join(parts[2:4]), parts[4:], parse_qs(url.query))
                if parts[:1] == ["datasets"] and len(parts) >= 6 and parts[3] == "resolve":
                    return self.resolve(
                        method, "/".join(parts[1:3]), unquote(parts[4]), unquote("/".join(parts[5:]))
                    )
                self.error(404, None, "Not Found")

            def repo(self, repo_id: str) -> Repo | None:
                found = hub.repos.get(repo_id)
                if found is None:
                    self.error(401, "RepoNotFound", "Repository not found")
                return found

            def commit(self, repo: Repo, revision: str) -> str | None:
                sha = repo.resolve(revision)
                if sha is None:
                    self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return sha

            def api(self, method: str, repo_id: str, rest: list[str], query: dict) -> None:
                repo = self.repo(repo_id)
                if repo is None:
                    return
                action = rest[0] if rest else "revision"
                revision = unquote(rest[1]) if len(rest) > 1 else "main"
                sha = self.commit(repo, revision)
                if sha is None:
                    return
                files = repo.commits[sha]
                if action == "revision" and method == "GET":
                    return self.json(
                        {
                            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                            "id": repo_id,
                            "author": repo_id.split("/")[0],
                            "sha": sha,
                            "private": False,
                            "gated": "auto" if repo.gated else False,
                            "disabled": False,
                            "tags": [],
                            "siblings": [{"rfilename": p} for p in sorted(files)],
                        }
                    )
                if action == "tree" and method == "GET":
                    base = unquote("/".join(rest[2:])).strip("/")
                    recursive = query.get("recursive", ["false"])[0].lower() == "true"
                    paths = sorted(set(files) | folders_of(files))
                    inside = [p for p in paths if not base or p.startswith(base + "/")]
                    if base and not inside:
                        return self.error(404, "EntryNotFound", f"{base} does not exist on {revision}")
                    depth = base.count("/") + 1 if base else 0
                    return self.json([entry(files, p) for p in inside if recursive or p.count("/") == depth])
                if action == "paths-info" and method == "POST":
                    form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                    known = set(files) | folders_of(files)
                    return self.json([entry(files, p) for p in form.get("paths", []) if p in known])
                self.error(404, None, "Not Found")

            def resolve(self, method: str, repo_id: str, revision: str, path: str) -> None:
                repo = self.repo(repo_id)
                if repo is None:
                    return
                sha = self.commit(repo, revision)
                if sha is None:
                    return
                if repo.gated and path not in PUBLIC_IN_GATED:
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                    if token not in repo.granted_tokens:
                        status = 403 if token else 401
                        return self.error(
                            status,
                            "GatedRepo",
                            f"Access to dataset {repo_id} is restricted. You "
                            "must have access to it and be authenticated to access it. Please log in.",
                        )
                data = repo.commits[sha].get(path)
                if data is None:
                    return self.error(404, "EntryNotFound", f"Entry not found: {path}")
                start, end = 0, len(data)
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes="):
                    first, _, last = ranged[6:].partition("-")
                    start, end = int(first or 0), min(len(data), int(last) + 1 if last else len(data))
                self.send_response(206 if ranged else 200)
                self.send_header("X-Repo-Commit", sha)
                self.send_header("ETag", f'"{git_blob_sha(data)}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start if method == "GET" else len(data)))
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.end_headers()
                if method == "GET":
                    self.wfile.write(data[start:end])

            def json(self, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status: int, code: str | None, message: str) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler
