"""The reviewer dashboard: server-rendered pages, sessions, CSRF, and a small JSON API."""
