"""chatdoc.safety"""
