"""Outputs (video out to VJ software) and control inputs, installed as `synd.bridges`."""
