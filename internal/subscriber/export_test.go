package subscriber

// ReadAll returns every good row and every problem: for the tests.
func (c *CSV) ReadAll() (rows []Row, problems []error) {
	for r := range c.Rows(func(err error) { problems = append(problems, err) }) {
		rows = append(rows, r)
	}
	return rows, problems
}
