"""chatdoc.privacy"""
