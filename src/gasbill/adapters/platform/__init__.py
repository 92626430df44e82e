"""The iotmeterv1 platform: wire formats, codec, client and query-mode poller."""
