"""chatdoc.dialogue"""
