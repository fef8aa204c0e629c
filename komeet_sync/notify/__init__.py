"""Telling people: the events ``store.events`` records, sent to each domain's notification
URLs (or ``KOMEET_SYNC_NOTIFY``'s) through Apprise, the library that speaks email, Slack,
Teams, generic JSON webhooks and a hundred other services behind one URL syntax."""
