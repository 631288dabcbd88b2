"""chatdoc.memory"""
