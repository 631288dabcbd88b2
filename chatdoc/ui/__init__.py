"""chatdoc.ui"""
