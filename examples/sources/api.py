#!/usr/bin/env python3
"""The sources example's HTTP API: products paged by number, behind a bearer token.

    CATALOG_TOKEN=example-token python3 api.py [PORT]

GET /products?page=N&per_page=M[&updated_since=RFC3339] answers {"data": [...], "page": N};
`updated_since` is inclusive. Standard library only.
"""

import json
import os
import sys
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PRODUCTS = [
    {"sku": "SKU-001", "name": "The Art of Computer Programming", "category": "books", "price": 12.50, "updated_at": "2024-04-01T08:00:00Z"},
    {"sku": "SKU-002", "name": "Chess Set", "category": "games", "price": 19.99, "updated_at": "2024-04-01T08:00:00Z"},
    {"sku": "SKU-003", "name": "Goldberg Variations", "category": "music", "price": 7.99, "updated_at": "2024-04-02T08:00:00Z"},
    {"sku": "SKU-004", "name": "Go Board", "category": "games", "price": 59.00, "updated_at": "2024-04-02T08:00:00Z"},
    {"sku": "SKU-005", "name": "Structure and Interpretation", "category": "books", "price": 7.99, "updated_at": "2024-04-03T08:00:00Z"},
    {"sku": "SKU-006", "name": "Synthesizer", "category": "music", "price": 617.28, "updated_at": "2024-04-03T08:00:00Z"},
    {"sku": "SKU-007", "name": "Puzzle Box", "category": "toys", "price": 25.00, "updated_at": "2024-04-04T08:00:00Z"},
    {"sku": "SKU-008", "name": "Postcard", "category": "books", "price": 4.20, "updated_at": "2024-04-04T08:00:00Z"},
]


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Products(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/products":
            return self.answer(404, {"error": "not found"})
        if self.headers.get("Authorization") != "Bearer " + os.environ.get("CATALOG_TOKEN", "example-token"):
            return self.answer(401, {"error": "give Authorization: Bearer <token>"})
        query = parse_qs(url.query)
        page = int(query.get("page", ["1"])[0])
        size = int(query.get("per_page", ["3"])[0])
        since = query.get("updated_since", [None])[0]
        kept = [p for p in PRODUCTS if since is None or parse(p["updated_at"]) >= parse(since)]
        self.answer(200, {"data": kept[(page - 1) * size : page * size], "page": page})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server = ThreadingHTTPServer(("127.0.0.1", port), Products)
    print(f"Catalog API at http://127.0.0.1:{server.server_address[1]}/products", flush=True)
    server.serve_forever()
