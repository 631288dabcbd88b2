"""chatdoc.eval"""
