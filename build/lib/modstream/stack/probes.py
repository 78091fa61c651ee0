"""Does a server answer its own protocol? Each probe is quick, bounded and never raises."""

import socket
import struct

import httpx
import redis


def kafka_answers(address: str, timeout: float = 2.0) -> bool:
    """An ApiVersions (v0) round trip: the first request every Kafka client makes."""
    host, port = _split(address)
    request = struct.pack(">hhih", 18, 0, 7, -1)  # api key, api version, correlation id, null client id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = sock.recv(8)
            return len(header) == 8 and struct.unpack(">ii", header)[1] == 7
    except OSError:
        return False


def http_answers(url: str, timeout: float = 2.0, *, want_ok: bool = False) -> bool:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 if want_ok else response.status_code < 500


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except redis.RedisError:
        return False


def worker_answers(port: int, timeout: float = 2.0) -> bool:
    try:
        return bool(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout).json().get("status") == "ok")
    except (httpx.HTTPError, ValueError):
        return False


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)
