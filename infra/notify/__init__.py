"""Notifications going out: Slack (slack-sdk) and signed webhooks (Standard Webhooks), with retries."""
