"""The study browser (File > Open study folder), the OU and trend views, and their controller."""
