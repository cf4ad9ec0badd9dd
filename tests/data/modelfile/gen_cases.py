# Run from this folder: python3 gen_cases.py
# Writes ollama_cases.txt: Ollama's parser/parser_test.go inputs (adapted) with qfit's expected results.
T = '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>'
def esc(v): return v.replace('\\','\\\\').replace('\n','\\n').replace('\r','\\r').replace('\t','\\t')
cases = []
def ok(name, inp, *lines): cases.append((name, inp, 'expect', list(lines)))
def bad(name, inp, msg): cases.append((name, inp, 'error', [msg]))
UNK = " (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE, REQUIRES or ROUTE)"

# TestParseFileFile (ADAPTER line dropped: refused by qfit; param1/param2 -> real options)
ok('TestParseFileFile', '\nFROM model1\nLICENSE MIT\nPARAMETER num_ctx 4096\nPARAMETER stop value2\nTEMPLATE """' + T + '"""    \n',
   'FROM=model1', 'TEMPLATE=' + esc(T), 'PARAMETER num_ctx=4096', 'PARAMETER stop=value2', 'LICENSE=MIT')
bad('TestParseFileDraft', '\nFROM base\nDRAFT ./assistant\n', 'modelfile:3:1: DRAFT is not supported: qfit has no speculative decoding with a draft model')
ok('TestParseFileTrimSpace', '\nFROM "     model 1"\nLICENSE "MIT       "\nPARAMETER num_ctx        4096\nPARAMETER stop    value2\nTEMPLATE """   ' + T + '   """    \n',
   'FROM=     model 1', 'TEMPLATE=' + esc('   ' + T + '   '), 'PARAMETER num_ctx=4096', 'PARAMETER stop=value2', 'LICENSE=MIT       ')
# TestParseFileFrom
ok('From 1', 'FROM "FOO  BAR  "', 'FROM=FOO  BAR  ')
ok('From 2', 'FROM "FOO BAR"\nPARAMETER stop value1', 'FROM=FOO BAR', 'PARAMETER stop=value1')
ok('From 3', 'FROM     FOOO BAR    ', 'FROM=FOOO BAR')
ok('From 4', 'FROM /what/is/the path ', 'FROM=/what/is/the path')
ok('From 5', 'FROM foo', 'FROM=foo')
ok('From 6', 'FROM /path/to/model', 'FROM=/path/to/model')
ok('From 7', 'FROM /path/to/model/fp16.bin', 'FROM=/path/to/model/fp16.bin')
ok('From 8', 'FROM llama3:latest', 'FROM=llama3:latest')
ok('From 9', 'FROM llama3:7b-instruct-q4_K_M', 'FROM=llama3:7b-instruct-q4_K_M')
bad('From 10', '', 'modelfile:1:1: no FROM line')
bad('From 11', 'PARAMETER stop value1', 'modelfile:1:1: no FROM line')
ok('From 12', 'PARAMETER stop value1\nFROM foo', 'FROM=foo', 'PARAMETER stop=value1')
ok('From 13', 'PARAMETER stop the \nFROM lemons make lemonade ', 'FROM=lemons make lemonade', 'PARAMETER stop=the')
bad('TestParseFileParametersMissingValue', '\nFROM foo\nPARAMETER stop\n', 'modelfile:3:15: PARAMETER: missing value')
bad('TestParseFileBadCommand', '\nFROM foo\nBADCOMMAND param1 value1\n', "modelfile:3:1: unknown instruction 'BADCOMMAND'" + UNK)
bad('TestParseFileRenderer', '\nFROM foo\nRENDERER renderer1\n', 'modelfile:3:1: RENDERER is not supported: qfit has no built-in prompt renderers (use TEMPLATE)')
bad('TestParseFileParser', '\nFROM foo\nPARSER parser1\n', 'modelfile:3:1: PARSER is not supported: qfit has no built-in output parsers')
# TestParseFileMessages
ok('Messages 1', '\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n', 'FROM=foo', 'MESSAGE system=You are a file parser. Always parse things.')
ok('Messages 2', '\nFROM foo\nMESSAGE system You are a file parser. Always parse things.', 'FROM=foo', 'MESSAGE system=You are a file parser. Always parse things.')
ok('Messages 3', '\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n',
   'FROM=foo', 'MESSAGE system=You are a file parser. Always parse things.', 'MESSAGE user=Hey there!', 'MESSAGE assistant=Hello, I want to parse all the things!')
ok('Messages 4', '\nFROM foo\nMESSAGE system """\nYou are a multiline file parser. Always parse things.\n"""\n\t\t\t', 'FROM=foo', 'MESSAGE system=\\nYou are a multiline file parser. Always parse things.\\n')
bad('Messages 5', "\nFROM foo\nMESSAGE badguy I'm a bad guy!\n", 'modelfile:3:9: message role must be one of "system", "user", or "assistant"')
bad('Messages 6', '\nFROM foo\nMESSAGE system\n', 'modelfile:3:15: MESSAGE: missing value')
bad('Messages 7', '\nFROM foo\nMESSAGE system', 'modelfile:3:15: MESSAGE: missing value')
# TestParseFileQuoted
ok('Quoted 1', '\nFROM foo\nSYSTEM """\nThis is a\nmultiline system.\n"""\n\t\t\t', 'FROM=foo', 'SYSTEM=\\nThis is a\\nmultiline system.\\n')
ok('Quoted 2', '\nFROM foo\nSYSTEM """\nThis is a\nmultiline system."""\n\t\t\t', 'FROM=foo', 'SYSTEM=\\nThis is a\\nmultiline system.')
ok('Quoted 3', '\nFROM foo\nSYSTEM """This is a\nmultiline system."""\n\t\t\t', 'FROM=foo', 'SYSTEM=This is a\\nmultiline system.')
ok('Quoted 4', '\nFROM foo\nSYSTEM """This is a multiline system."""\n\t\t\t', 'FROM=foo', 'SYSTEM=This is a multiline system.')
bad('Quoted 5', '\nFROM foo\nSYSTEM """This is a multiline system.""\n\t\t\t', 'modelfile:3:8: unterminated """ value: no closing """ before the end of the file')
bad('Quoted 6', '\nFROM foo\nSYSTEM "\n\t\t\t', 'modelfile:3:8: unterminated " value: no closing " before the end of the file')
ok('Quoted 7', '\nFROM foo\nSYSTEM """\nThis is a multiline system with "quotes".\n"""\n', 'FROM=foo', 'SYSTEM=\\nThis is a multiline system with "quotes".\\n')
ok('Quoted 8', '\nFROM foo\nSYSTEM """"""\n', 'FROM=foo', 'SYSTEM=')
ok('Quoted 9', '\nFROM foo\nSYSTEM ""\n', 'FROM=foo', 'SYSTEM=')
ok('Quoted 10', '\nFROM foo\nSYSTEM "\'"\n', 'FROM=foo', "SYSTEM='")
ok('Quoted 11', '\nFROM foo\nSYSTEM """\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""\n', 'FROM=foo', 'SYSTEM=\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'')
ok('Quoted 12', '\nFROM foo\nTEMPLATE """\n{{ .Prompt }}\n"""', 'FROM=foo', 'TEMPLATE=\\n{{ .Prompt }}\\n')
# TestParseFileParameters (numa and num_gqa are no longer options: unknown; penalize_newline: deprecated)
P = [('num_ctx 1','num_ctx','1'),('num_batch 1','num_batch','1'),('num_gpu 1','num_gpu','1'),('main_gpu 1','main_gpu','1'),
     ('use_mmap true','use_mmap','true'),('num_thread 1','num_thread','1'),('num_keep 1','num_keep','1'),('seed 1','seed','1'),
     ('num_predict 1','num_predict','1'),('top_k 1','top_k','1'),('top_p 1.0','top_p','1'),('min_p 0.05','min_p','0.05'),
     ('typical_p 1.0','typical_p','1'),('repeat_last_n 1','repeat_last_n','1'),('temperature 1.0','temperature','1'),
     ('repeat_penalty 1.0','repeat_penalty','1'),('presence_penalty 1.0','presence_penalty','1'),('frequency_penalty 1.0','frequency_penalty','1'),
     ('stop ### User:','stop','### User:'),('stop ### User: ','stop','### User:'),('stop "### User:"','stop','### User:'),
     ('stop "### User: "','stop','### User: '),('stop """### User:"""','stop','### User:'),('stop """### User:\n"""','stop','### User:\\n'),
     ('stop <|endoftext|>','stop','<|endoftext|>'),('stop <|eot_id|>','stop','<|eot_id|>'),('stop </s>','stop','</s>')]
for k, n, v in P:
    ok('Parameters ' + k.replace('\n','\\n'), 'FROM foo\nPARAMETER ' + k + '\n', 'FROM=foo', 'PARAMETER %s=%s' % (n, v))
ok('Parameters penalize_newline true (deprecated: skipped)', 'FROM foo\nPARAMETER penalize_newline true\n', 'FROM=foo')
bad('Parameters numa true (no longer an option)', 'FROM foo\nPARAMETER numa true\n', "modelfile:2:11: unknown parameter 'numa'")
bad('Parameters num_gqa 1 (no longer an option)', 'FROM foo\nPARAMETER num_gqa 1\n', "modelfile:2:11: unknown parameter 'num_gqa'")
ok('TestParseFileComments', '\n# comment\nFROM foo\n\t', 'FROM=foo')
ok('TestParseMultiByte', 'FROM test\n\tSYSTEM 你好👋', 'FROM=test', 'SYSTEM=你好👋')
# TestCreateRequest (typed values)
ok('CreateRequest 1', 'FROM test', 'FROM=test')
ok('CreateRequest 2', 'FROM test\nTEMPLATE some template\n', 'FROM=test', 'TEMPLATE=some template')
ok('CreateRequest 3', 'FROM test\nLICENSE single license\nPARAMETER temperature 0.5\nMESSAGE user Hello\n',
   'FROM=test', 'PARAMETER temperature=0.5', 'LICENSE=single license', 'MESSAGE user=Hello')
ok('CreateRequest 4', 'FROM test\nPARAMETER temperature 0.5\nPARAMETER top_k 1\nSYSTEM You are a bot.\nLICENSE license1\nLICENSE license2\nMESSAGE user Hello there!\nMESSAGE assistant Hi! How are you?\n',
   'FROM=test', 'SYSTEM=You are a bot.', 'PARAMETER temperature=0.5', 'PARAMETER top_k=1', 'LICENSE=license1', 'LICENSE=license2',
   'MESSAGE user=Hello there!', 'MESSAGE assistant=Hi! How are you?')
# TestParseFileFormatParseFile inputs (ADAPTER dropped; param1/param2 -> stop) -- also round-tripped by the test
ok('FormatParseFile 1', '\nFROM foo\nLICENSE MIT\nPARAMETER stop value1\nPARAMETER stop value2\nTEMPLATE template1\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n',
   'FROM=foo', 'TEMPLATE=template1', 'PARAMETER stop=value1', 'PARAMETER stop=value2', 'LICENSE=MIT',
   'MESSAGE system=You are a file parser. Always parse things.', 'MESSAGE user=Hey there!', 'MESSAGE assistant=Hello, I want to parse all the things!')
ok('FormatParseFile 2', '\nFROM foo\nLICENSE MIT\nPARAMETER stop value1\nPARAMETER stop value2\nTEMPLATE template1\nMESSAGE system """\nYou are a store greeter. Always respond with "Hello!".\n"""\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n',
   'FROM=foo', 'TEMPLATE=template1', 'PARAMETER stop=value1', 'PARAMETER stop=value2', 'LICENSE=MIT',
   'MESSAGE system=\\nYou are a store greeter. Always respond with "Hello!".\\n', 'MESSAGE user=Hey there!', 'MESSAGE assistant=Hello, I want to parse all the things!')
ok('FormatParseFile 3', '\nFROM foo\nLICENSE """\nVery long and boring legal text.\nBlah blah blah.\n"Oh look, a quote!"\n"""\n\nPARAMETER stop value1\nPARAMETER stop value2\nTEMPLATE template1\nMESSAGE system """\nYou are a store greeter. Always respond with "Hello!".\n"""\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n',
   'FROM=foo', 'TEMPLATE=template1', 'PARAMETER stop=value1', 'PARAMETER stop=value2', 'LICENSE=\\nVery long and boring legal text.\\nBlah blah blah.\\n"Oh look, a quote!"\\n',
   'MESSAGE system=\\nYou are a store greeter. Always respond with "Hello!".\\n', 'MESSAGE user=Hey there!', 'MESSAGE assistant=Hello, I want to parse all the things!')
ok('FormatParseFile 4', '\nFROM foo\nSYSTEM ""\n', 'FROM=foo', 'SYSTEM=')
# TestParseFileUTF16ParseFile: binary input, tested in tests/test_modelfile.c (utf16_with_bom)

with open('ollama_cases.txt', 'w', encoding='utf-8', newline='') as f:
    f.write('# Ollama parser test vectors as data; format in README.md\n')
    for name, inp, kind, lines in cases:
        assert '\n=== ' not in inp and '\n--- ' not in inp
        f.write('=== %s\n--- input\n%s\n--- %s\n' % (name, inp, kind))
        for l in lines: f.write(l + '\n')
    f.write('=== end\n')
print(len(cases))
