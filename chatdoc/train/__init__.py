"""chatdoc.train"""
