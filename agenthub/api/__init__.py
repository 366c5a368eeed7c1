"""REST handlers: parse, authenticate, call one service, render. No rules here."""
